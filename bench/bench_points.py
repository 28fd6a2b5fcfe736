"""Benchmark: write and read-all of N random points, ours vs zarr-vectors 0.9.2 vs raw I/O.

Workload (the reference's own): N float32 xyz points uniform in a 1000^3 domain,
chunk 200^3, bin 50^3, one float32 attribute, local filesystem, no compression.
Every figure comes from the same run; compare ratios, not absolute times.

    python bench/bench_points.py                    # N = 10^7, 3 repeats
    python bench/bench_points.py --n 100000 --repeat 1 --ref-python PATH

Prints a Markdown table and writes JSON to --json if given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workload import BIN, CHUNK, points  # noqa: E402

import zarr_vectors  # noqa: E402
from zarr_vectors.core.multiscale import finalise  # noqa: E402
from zarr_vectors.types.points import read_points, write_points, write_points_partition  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ours(n: int, workdir: str, repeat: int) -> dict[str, list[float]]:
    positions, intensity = points(n)
    raw = f"{workdir}/raw.bin"
    one, parts = f"{workdir}/ours.zarrvectors", f"{workdir}/ours_parts.zarrvectors"
    res: dict[str, list[float]] = {k: [] for k in ("tofile", "fromfile", "write", "write_4_partitions", "read_all")}
    slabs = [(i * 250.0, (i + 1) * 250.0) for i in range(4)]
    masks = [(positions[:, 2] >= lo) & (positions[:, 2] < hi) for lo, hi in slabs]
    slab_data = [(np.ascontiguousarray(positions[m]), np.ascontiguousarray(intensity[m])) for m in masks]
    for _ in range(repeat):
        for p in (one, parts):
            shutil.rmtree(p, ignore_errors=True)
        if os.path.exists(raw):
            os.remove(raw)

        def tofile():
            with open(raw, "wb") as f:
                positions.tofile(f)
                intensity.tofile(f)

        res["tofile"].append(timed(tofile))
        res["fromfile"].append(timed(lambda: np.fromfile(raw, dtype=np.uint8)))
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
    return res


def reference(n: int, workdir: str, repeat: int, python: str) -> dict[str, list[float]]:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref_side.py")
    out = subprocess.run([python, script, str(n), workdir, str(repeat)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ref-python", default=os.environ.get("ZVF_REFERENCE_PYTHON",
                                                          ".cache/reference-venv/bin/python"))
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--workdir", default=None, help="directory on the filesystem to measure (default: a temp dir)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="zvf-bench-", dir=args.workdir)
    try:
        res = {"ours": ours(args.n, workdir, args.repeat)}
        if not args.no_reference:
            res["reference"] = reference(args.n, workdir, args.repeat, args.ref_python)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    nbytes = args.n * 16
    med = {side: {k: statistics.median(v) for k, v in r.items()} for side, r in res.items()}
    spread = {side: {k: (min(v), max(v)) for k, v in r.items()} for side, r in res.items()}
    o = med["ours"]
    rows = [
        ("raw `ndarray.tofile`", o["tofile"], "ceiling"),
        ("ours `write_points`", o["write"], f"{o['tofile'] / o['write']:.0%} of tofile"),
        ("ours 4 x `write_points_partition` + `finalise`", o["write_4_partitions"],
         f"{o['tofile'] / o['write_4_partitions']:.0%} of tofile"),
        ("raw `numpy.fromfile`", o["fromfile"], "ceiling"),
        ("ours `read_points` (all)", o["read_all"], f"{o['fromfile'] / o['read_all']:.0%} of fromfile"),
    ]
    if "reference" in med:
        r = med["reference"]
        rows += [
            ("zarr-vectors 0.9.2 `write_points`", r["write"],
             f"ours is {r['write'] / o['write']:.1f}x faster (partitioned: {r['write'] / o['write_4_partitions']:.1f}x)"),
            ("zarr-vectors 0.9.2 `read_points` (all)", r["read_all"], f"ours is {r['read_all'] / o['read_all']:.1f}x faster"),
        ]
    print(f"N = {args.n:,} points ({nbytes / 1e6:.0f} MB of positions + attribute), {args.repeat} repeat(s), "
          f"median [min-max]; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| what | time (s) | throughput (M points/s) | comparison |")
    print("|---|---|---|---|")
    for name, t, note in rows:
        side = "reference" if name.startswith("zarr-vectors") else "ours"
        key = {"raw `ndarray.tofile`": "tofile", "raw `numpy.fromfile`": "fromfile",
               "ours `write_points`": "write", "ours `read_points` (all)": "read_all",
               "ours 4 x `write_points_partition` + `finalise`": "write_4_partitions",
               "zarr-vectors 0.9.2 `write_points`": "write",
               "zarr-vectors 0.9.2 `read_points` (all)": "read_all"}[name]
        lo, hi = spread[side][key]
        print(f"| {name} | {t:.3f} [{lo:.3f}-{hi:.3f}] | {args.n / t / 1e6:.1f} | {note} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "repeat": args.repeat, "results": res, "zvf": zarr_vectors.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
