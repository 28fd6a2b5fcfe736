"""Benchmark: write and read-all of N random points on S3, ours vs zarr-vectors 0.9.2.

The workload of bench/bench_points.py (N float32 xyz points in a 1000^3 domain,
chunk 200^3, bin 50^3, one float32 attribute, no compression), written to and
read back from an S3 server on 127.0.0.1: moto's standalone server, started
here (PyPI moto[server]). Both packages write the same data to the same server
in the same run; compare ratios. moto is a Python server (werkzeug, one
connection per request), so it, not the network, bounds what any client can
reach: the absolute numbers are far below a real S3 endpoint's.

The reference runs in its own virtual environment (--ref-python, default
$ZVF_REFERENCE_PYTHON or .cache/reference-venv/bin/python); it reaches S3
through fsspec/s3fs, which this script installs there if missing.

    python bench/bench_s3.py --n 1000000 --repeat 3
    python bench/bench_s3.py --n 100000 --repeat 1 --no-reference

Prints a Markdown table and writes JSON to --json if given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "s3"))
from _workload import BIN, CHUNK, points  # noqa: E402
import moto_server  # noqa: E402  (tests/s3/moto_server.py: stdlib only)

BUCKET = "zvf-bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def object_stats(endpoint: str, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under prefix, from ListObjectsV2 (moto needs no signature)."""
    count = size = 0
    token = None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        q = f"list-type=2&prefix={urllib.request.quote(prefix + '/', safe='')}"
        if token:
            q += f"&continuation-token={urllib.request.quote(token, safe='')}"
        body = opener.open(f"{endpoint}/{BUCKET}?{q}").read().decode()
        count += body.count("<Contents>")
        size += sum(int(s.split("</Size>")[0]) for s in body.split("<Size>")[1:])
        if "<IsTruncated>true</IsTruncated>" not in body:
            return count, size
        token = body.split("<NextContinuationToken>")[1].split("</NextContinuationToken>")[0]


def ours(n: int, repeat: int) -> dict:
    from zarr_vectors.core.multiscale import finalise
    from zarr_vectors.types.points import read_points, write_points, write_points_partition

    positions, intensity = points(n)
    slabs = [(i * 250.0, (i + 1) * 250.0) for i in range(4)]
    masks = [(positions[:, 2] >= lo) & (positions[:, 2] < hi) for lo, hi in slabs]
    slab_data = [(np.ascontiguousarray(positions[m]), np.ascontiguousarray(intensity[m])) for m in masks]
    res: dict = {k: [] for k in ("write", "write_4_partitions", "read_all")}
    for _ in range(repeat):
        one = f"s3://{BUCKET}/ours-{uuid.uuid4().hex[:8]}/scan.zarrvectors"
        parts = f"s3://{BUCKET}/ours-parts-{uuid.uuid4().hex[:8]}/scan.zarrvectors"
        res["write"].append(timed(lambda: write_points(
            one, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})))

        def partitioned():
            for (lo, hi), (p, a) in zip(slabs, slab_data):
                write_points_partition(parts, p, chunk_shape=CHUNK, bin_shape=BIN,
                                       attributes={"intensity": a}, z_range=(lo, hi))
            finalise(parts)

        res["write_4_partitions"].append(timed(partitioned))
        out = {}
        res["read_all"].append(timed(lambda: out.update(read_points(one))))
        assert len(out["positions"]) == n
        res["last_prefix"] = one[len(f"s3://{BUCKET}/"):]
    return res


REF_SIDE = textwrap.dedent("""
    import json, sys, time, uuid, warnings
    warnings.filterwarnings("ignore")
    sys.path.insert(0, sys.argv[1])
    from _workload import BIN, CHUNK, points
    from zarr_vectors.types.points import read_points, write_points
    n, repeat, bucket = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    positions, intensity = points(n)
    out = {"write": [], "read_all": []}
    for _ in range(repeat):
        url = f"s3://{bucket}/ref-{uuid.uuid4().hex[:8]}/scan.zarrvectors"
        t = time.perf_counter()
        write_points(url, positions, chunk_shape=CHUNK, bin_shape=BIN, vertex_attributes={"intensity": intensity})
        out["write"].append(time.perf_counter() - t)
        t = time.perf_counter()
        r = read_points(url, attribute_names=["intensity"])
        out["read_all"].append(time.perf_counter() - t)
        assert len(r["positions"]) == n
        out["last_prefix"] = url[len(f"s3://{bucket}/"):]
    print(json.dumps(out))
""")


def reference_env(python: str, endpoint: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint, NO_PROXY="127.0.0.1,localhost",
               ZARR_VECTORS_BACKEND="fsspec")
    return env


def ensure_s3fs(python: str) -> None:
    probe = subprocess.run([python, "-c", "import s3fs"], capture_output=True)
    if probe.returncode != 0:
        print(f"installing s3fs into the reference environment ({python})", file=sys.stderr)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "s3fs"],
                       check=True)


def reference(n: int, repeat: int, python: str, endpoint: str) -> dict:
    ensure_s3fs(python)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(REF_SIDE)
        script = f.name
    try:
        out = subprocess.run([python, script, HERE, str(n), str(repeat), BUCKET], check=True,
                             capture_output=True, text=True, env=reference_env(python, endpoint))
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"reference side failed:\n{exc.stderr[-4000:]}") from exc
    finally:
        os.unlink(script)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ref-python", default=os.environ.get("ZVF_REFERENCE_PYTHON",
                                                          os.path.join(REPO, ".cache/reference-venv/bin/python")))
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--concurrency", type=int, default=None, help="ZVF_S3_CONCURRENCY for our side")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    server = moto_server.start()
    try:
        moto_server.create_bucket(server.endpoint, BUCKET)
        os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=server.endpoint, NO_PROXY="127.0.0.1,localhost")
        if args.concurrency:
            os.environ["ZVF_S3_CONCURRENCY"] = str(args.concurrency)
        res = {"ours": ours(args.n, args.repeat)}
        stats = {"ours": object_stats(server.endpoint, res["ours"].pop("last_prefix"))}
        if not args.no_reference:
            res["reference"] = reference(args.n, args.repeat, args.ref_python, server.endpoint)
            stats["reference"] = object_stats(server.endpoint, res["reference"].pop("last_prefix"))
    finally:
        server.stop()

    import zarr_vectors

    med = {side: {k: statistics.median(v) for k, v in r.items()} for side, r in res.items()}
    spread = {side: {k: (min(v), max(v)) for k, v in r.items()} for side, r in res.items()}
    o = med["ours"]
    conc = os.environ.get("ZVF_S3_CONCURRENCY", "16")
    rows = [
        ("ours `write_points`", "ours", "write", ""),
        ("ours 4 x `write_points_partition` + `finalise`", "ours", "write_4_partitions", ""),
        ("ours `read_points` (all)", "ours", "read_all", ""),
    ]
    if "reference" in med:
        r = med["reference"]
        rows += [
            ("zarr-vectors 0.9.2 `write_points` (fsspec/s3fs)", "reference", "write",
             f"ours is {r['write'] / o['write']:.1f}x faster (partitioned: {r['write'] / o['write_4_partitions']:.1f}x)"),
            ("zarr-vectors 0.9.2 `read_points` (all)", "reference", "read_all",
             f"ours is {r['read_all'] / o['read_all']:.1f}x faster"),
        ]
    print(f"N = {args.n:,} points ({args.n * 16 / 1e6:.0f} MB of positions + attribute), {args.repeat} repeat(s), "
          f"median [min-max]; S3 = moto {moto_version()} on 127.0.0.1; ours with {conc} requests in flight; "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for side, (count, size) in stats.items():
        print(f"{side}: {count} objects, {size / 1e6:.1f} MB in the bucket for one store")
    print()
    print("| what | time (s) | throughput (M points/s) | MB/s | comparison |")
    print("|---|---|---|---|---|")
    for name, side, key, note in rows:
        t = med[side][key]
        lo, hi = spread[side][key]
        print(f"| {name} | {t:.3f} [{lo:.3f}-{hi:.3f}] | {args.n / t / 1e6:.2f} | {args.n * 16 / t / 1e6:.1f} | {note} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "repeat": args.repeat, "results": res, "objects": stats,
                       "zvf": zarr_vectors.__version__}, f, indent=1)


def moto_version() -> str:
    try:
        from importlib.metadata import version

        return version("moto")
    except Exception:  # moto may live in another environment
        return "(version unknown)"


if __name__ == "__main__":
    main()
