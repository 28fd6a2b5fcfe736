"""Benchmark: write time against chunk count, ours vs zarr-vectors 0.9.2.

N points of the workload (1000^3 domain, one float32 attribute, no
compression) written with cubic chunks of side c for c in chunk_sizes (500 ->
8 chunks ... 50 -> 8,000 chunks), each with bins_per_axis^3 bins per chunk so
that only the chunk count changes. A least-squares line time = a + b * chunks
gives b, the added cost per chunk. The reference is slow per chunk, so smaller
presets give it fewer points and chunk counts; its slope b does not depend on N.

The filesystem's own floor is measured next to them ("files alone"): the same
bytes written as the files of such a store, with nothing else: for each chunk
(i, j, k) three files, 0/<array>/c/i/j/k for the vertices, the fragment index
and the attribute, each created with one open (O_CREAT | O_EXCL), one write and
one close, as our writer does, in one forked process per core (threads would
queue on the GIL between system calls), in the order our writer uses (the last
axis slowest, so that they work in different directories). Python adds a few
microseconds per file to the system calls. Its slope is about what creating the
files of one chunk costs on this filesystem, for any writer. The two take turns
in every repeat (series()).

Both are measured again on a tmpfs (/dev/shm) when there is one: there the
filesystem costs next to nothing, so the slope is the engine's own cost per
chunk.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Context, fit_line, measurement, remove, timed  # noqa: E402
from _workload import DOMAIN, points  # noqa: E402

from zarr_vectors.types.points import write_points  # noqa: E402


def chunk_count(c: float) -> int:
    return round(DOMAIN / c) ** 3


def files_alone(root: str, side: int, n: int, positions: memoryview, values: memoryview, bins: int,
                processes: bool = True) -> None:
    """The files of a store with side^3 chunks, each holding n / side^3 rows: bytes only (see the module doc).

    processes=False uses threads: for a few large files, where the GIL costs
    nothing next to each write, and a fork of a large process would (page tables:
    12-15 ms for a process holding workload A).
    """
    chunks = side ** 3
    rows = [n * c // chunks for c in range(chunks + 1)]
    fragments = bytes(8 * (bins + 1))
    # The last axis slowest, as our writer orders chunks (cells.cpp: directory_spread_order).
    order = [(i, j, k) for k in range(side) for i in range(side) for j in range(side)]
    arrays = (("vertices", positions, 12), ("vertex_fragments", None, 0), ("intensity", values, 4))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def work(t: int) -> None:
        made: set[str] = set()
        for i, j, k in order[t::threads]:
            c = (i * side + j) * side + k
            for name, data, width in arrays:
                d = f"{root}/0/{name}/c/{i}/{j}"
                if d not in made:
                    os.makedirs(d, exist_ok=True)
                    made.add(d)
                fd = os.open(f"{d}/{k}", flags, 0o666)
                try:
                    os.write(fd, fragments if data is None else data[rows[c] * width:rows[c + 1] * width])
                finally:
                    os.close(fd)

    if not processes:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(work, range(threads)))
        return
    pids = []
    for t in range(threads):
        pid = os.fork()
        if pid == 0:  # the child writes its share and leaves without Python's cleanup
            code = 1
            try:
                work(t)
                code = 0
            except BaseException:
                traceback.print_exc()  # the parent only sees the exit status
            finally:
                os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise RuntimeError(f"files alone: {len(failed)} of {threads} writer processes failed under {root}")


def fit(by_chunk: dict[str, dict]) -> dict:
    xs = [chunk_count(float(c)) for c in by_chunk]
    ys = [m["median"] for m in by_chunk.values()]
    a, b = fit_line(xs, ys)
    return {"a_s": a, "b_us_per_chunk": b * 1e6}


def tmpfs_dir() -> str | None:
    """/dev/shm if it is a writable tmpfs, else None."""
    try:
        with open("/proc/mounts") as f:
            mounted = any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in f)
    except OSError:
        return None
    return "/dev/shm" if mounted and os.access("/dev/shm", os.W_OK) else None


def series(ctx: Context, root: str, sizes: list[float], writers: dict) -> dict[str, dict[str, dict]]:
    """Median [min-max] of each `write(path, side)` for each chunk side, each in a fresh path under root.

    The writers take turns within each repeat, so that all of them meet the same
    filesystem state: on ext4 the cost of creating files drifts over minutes.
    """
    out: dict[str, dict[str, dict]] = {name: {} for name in writers}
    for c in sizes:
        samples: dict[str, list[float]] = {name: [] for name in writers}
        for _ in range(ctx.repeat):
            for name, write in writers.items():
                path = f"{root}/{name}.zarrvectors"
                remove(path)
                samples[name].append(timed(lambda: write(path, c)))
        for name in writers:
            out[name][str(float(c))] = measurement(samples[name], chunks=chunk_count(c))
    for name in writers:
        remove(f"{root}/{name}.zarrvectors")
    return out


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n, chunk_sizes, ref_n, ref_chunk_sizes, bins_per_axis; tmpfs (default: /dev/shm if present)."""
    n, bpa = cfg["n"], cfg["bins_per_axis"]
    positions, intensity = points(n)
    pos_bytes, val_bytes = memoryview(positions.tobytes()), memoryview(intensity.tobytes())

    def ours(path: str, c: float) -> None:
        write_points(path, positions, chunk_shape=(c, c, c), bin_shape=(c / bpa,) * 3,
                     attributes={"intensity": intensity})

    def files(path: str, c: float) -> None:
        files_alone(path, round(DOMAIN / c), n, pos_bytes, val_bytes, bpa ** 3)

    sizes = cfg["chunk_sizes"]
    ctx.log(f"chunks: ours and the files alone, {len(sizes)} chunk sizes")
    result = {"params": {"n": n, "bins_per_axis": bpa, "chunk_sizes": sizes},
              **series(ctx, ctx.workdir, sizes, {"ours": ours, "files_alone": files})}
    result["derived"] = {"ours": fit(result["ours"]), "files_alone": fit(result["files_alone"])}
    shm = cfg.get("tmpfs", tmpfs_dir())
    if shm:
        ctx.log(f"chunks: the same on tmpfs ({shm})")
        root = tempfile.mkdtemp(prefix="zvf-bench-chunks-", dir=shm)
        try:
            got = series(ctx, root, sizes, {"ours": ours, "files_alone": files})
            result["ours_tmpfs"], result["files_alone_tmpfs"] = got["ours"], got["files_alone"]
        finally:
            shutil.rmtree(root, ignore_errors=True)  # memory, not disk: no inode scans to avoid
        result["params"]["tmpfs"] = shm
        result["derived"]["ours_tmpfs"] = fit(result["ours_tmpfs"])
        result["derived"]["files_alone_tmpfs"] = fit(result["files_alone_tmpfs"])
    if ctx.reference:
        ctx.log(f"chunks: reference at N = {cfg['ref_n']:,}, chunk sizes {cfg['ref_chunk_sizes']}")
        got = ctx.reference.call("chunks", n=cfg["ref_n"], chunk_sizes=[float(c) for c in cfg["ref_chunk_sizes"]],
                                 bins_per_axis=bpa, workdir=ctx.workdir, repeat=ctx.repeat)["write"]
        result["reference"] = {c: measurement(s, chunks=chunk_count(float(c))) for c, s in got.items()}
        result["params"].update(ref_n=cfg["ref_n"], ref_chunk_sizes=cfg["ref_chunk_sizes"])
        result["derived"]["reference"] = fit(result["reference"])
        result["derived"]["per_chunk_cost_ratio"] = (result["derived"]["reference"]["b_us_per_chunk"]
                                                     / result["derived"]["ours"]["b_us_per_chunk"])
    return result


COLUMNS = [("ours", "ours (s)"), ("reference", "zarr-vectors 0.9.2 (s)"), ("files_alone", "the files alone (s)"),
           ("ours_tmpfs", "ours, tmpfs (s)"), ("files_alone_tmpfs", "the files alone, tmpfs (s)")]


def table(result: dict) -> str:
    p, d = result["params"], result["derived"]
    cols = [(k, title) for k, title in COLUMNS if k in result]
    lines = [f"Ours at N = {p['n']:,}" + (f", the reference at N = {p['ref_n']:,}" if "reference" in result else "")
             + f"; {p['bins_per_axis']}^3 bins per chunk; time: median [min-max]"
             + (f"; tmpfs: {p['tmpfs']}" if "tmpfs" in p else ""), "",
             "| chunk side | chunks | " + " | ".join(t for _, t in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    span = lambda m: f"{m['median']:.3f} [{m['min']:.3f}-{m['max']:.3f}]" if m else "-"  # noqa: E731
    for c, m in result["ours"].items():
        lines.append(f"| {float(c):g} | {m['chunks']:,} | " + " | ".join(span(result[k].get(c)) for k, _ in cols) + " |")
    lines.append("| fit: cost per chunk (µs) | | " + " | ".join(f"{d[k]['b_us_per_chunk']:.1f}" for k, _ in cols) + " |")
    return "\n".join(lines)
