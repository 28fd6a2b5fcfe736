"""Times zarr-vectors 0.9.2 (the reference); run with the reference venv's python.

    python ref_side.py serve     # one JSON request per stdin line -> one JSON reply per stdout line

Each request is {"op": NAME, ...arguments}; every timing is taken inside this
process, imports excluded. Anything the reference prints goes to stderr so
that stdout carries only replies. Requests:

  version                                   -> {"zarr_vectors": "0.9.2"}
  points   sizes workdir repeat             -> {"write": {n: [s...]}, "read_all": {n: [s...]}}
  chunks   n chunk_sizes bins_per_axis workdir repeat -> {"write": {chunk: [s...]}, "chunks": {chunk: count}}
  write    path n                            -> {} (the workload store, chunk 200^3, bin 50^3)
  query    path bbox warmup reps budget_s    -> {"latency": [s...], "count": k}
  pyramid  source workdir factors repeat     -> {"build": [s...]}  (a fresh copy of source per run)
"""

import contextlib
import json
import shutil
import sys
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _fs import retire  # noqa: E402
from _workload import BIN, CHUNK, points  # noqa: E402

with contextlib.redirect_stdout(sys.stderr):
    from importlib.metadata import version

    from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
    from zarr_vectors.types.points import read_points, write_points  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def op_points(sizes, workdir, repeat):
    out = {"write": {}, "read_all": {}}
    for n in sizes:
        positions, intensity = points(n)
        path = f"{workdir}/ref-points.zarrvectors"
        w, r = [], []
        for _ in range(repeat):
            retire(path)
            w.append(timed(lambda: write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN,
                                                vertex_attributes={"intensity": intensity})))
            got = {}
            r.append(timed(lambda: got.update(read_points(path, attribute_names=["intensity"]))))
            assert len(got["positions"]) == n
        retire(path)
        out["write"][str(n)], out["read_all"][str(n)] = w, r
    return out


def op_chunks(n, chunk_sizes, bins_per_axis, workdir, repeat):
    positions, intensity = points(n)
    out = {"write": {}}
    path = f"{workdir}/ref-chunks.zarrvectors"
    for c in chunk_sizes:
        samples = []
        for _ in range(repeat):
            retire(path)
            samples.append(timed(lambda: write_points(
                path, positions, chunk_shape=(c, c, c), bin_shape=(c / bins_per_axis,) * 3,
                vertex_attributes={"intensity": intensity})))
        out["write"][str(c)] = samples
    retire(path)
    return out


def op_write(path, n):
    positions, intensity = points(n)
    retire(path)
    write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN, vertex_attributes={"intensity": intensity})
    return {}


def op_query(path, bbox, warmup, reps, budget_s):
    box = (tuple(bbox[0]), tuple(bbox[1]))
    got = {}

    def query():
        got.update(read_points(path, bbox=box, attribute_names=["intensity"]))

    for _ in range(warmup):
        query()
    latency = []
    start = time.perf_counter()
    while len(latency) < reps and (len(latency) < 3 or time.perf_counter() - start < budget_s):
        latency.append(timed(query))
    return {"latency": latency, "count": int(len(got["positions"]))}


def op_pyramid(source, workdir, factors, repeat):
    build = []
    for _ in range(repeat):
        path = f"{workdir}/ref-pyramid.zarrvectors"
        retire(path)
        shutil.copytree(source, path)
        build.append(timed(lambda: build_pyramid(path, factors=[tuple(f) for f in factors])))
        retire(path)
    return {"build": build}


OPS = {"points": op_points, "chunks": op_chunks, "write": op_write, "query": op_query, "pyramid": op_pyramid,
       "version": lambda: {"zarr_vectors": version("zarr-vectors")}}


def serve() -> None:
    replies = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op not in OPS:
                raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
            with contextlib.redirect_stdout(sys.stderr):
                reply = OPS[op](**request)
        except Exception as exc:  # reported to the caller, which stops the run
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit("usage: ref_side.py serve   (requests on stdin; see the module docstring)")
    serve()
