"""Benchmark: write and read-all of N random points, ours vs zarr-vectors 0.9.2 vs raw I/O.

Workload A (the reference's own): N float32 xyz points uniform in a 1000^3
domain, chunk 200^3, bin 50^3, one float32 attribute, local filesystem, no
compression. Measured at several N (the largest is the headline) so that the
time-against-points curve comes from the same run. Compare ratios, not times.

Next to `tofile` (one file), "files alone" writes the same bytes, already in
storage order, as the store's files (bench_chunks.files_alone, on one thread
per core): the write's I/O without its sort, so that the two parts of the gap to
`tofile` are measured. "copy" is one copy of the same bytes in memory on all
cores: the least a sort into storage order can cost.

"durable" repeats `tofile` and our write with the data on stable storage at the
end: `tofile` then `fsync` of its file, and `write_points(durable=True)` (one
`syncfs` before the metadata and one after). The machine's other dirty data is
flushed, untimed, before each of the two, so each waits for its own bytes only.

    python bench/bench_points.py                    # N = 10^7, 3 repeats
    python bench/bench_points.py --n 100000 --repeat 1 --ref-python PATH

Part of bench/run_all.py, which runs it at several sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Context, ReferenceSide, measurement, remove, sig, speedup, timed  # noqa: E402
from _workload import BIN, CHUNK, DOMAIN, points  # noqa: E402
from bench_chunks import files_alone  # noqa: E402

from zarr_vectors.core.multiscale import finalise  # noqa: E402
from zarr_vectors.types.points import read_points, write_points, write_points_partition  # noqa: E402

OURS = ("tofile", "files_alone", "copy", "fromfile", "write", "write_4_partitions", "read_all",
        "tofile_durable", "write_durable")


def copy_all_cores(pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """dst[...] = src for each (src, dst), split in row blocks over one thread per core (numpy copies without the GIL)."""
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def part(t: int) -> None:
        for src, dst in pairs:
            lo, hi = len(src) * t // threads, len(src) * (t + 1) // threads
            np.copyto(dst[lo:hi], src[lo:hi])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(part, range(threads)))


def ours(n: int, workdir: str, repeat: int) -> dict[str, list[float]]:
    positions, intensity = points(n)
    raw, files = f"{workdir}/raw.bin", f"{workdir}/files.zarrvectors"
    one, parts = f"{workdir}/ours.zarrvectors", f"{workdir}/ours_parts.zarrvectors"
    raw_durable, one_durable = f"{workdir}/raw_durable.bin", f"{workdir}/ours_durable.zarrvectors"
    # The store's files with the same bytes already in storage order: what is
    # left of a write without the sort (see bench_chunks.files_alone).
    pos_bytes, val_bytes = memoryview(positions.tobytes()), memoryview(intensity.tobytes())
    side, bins = round(DOMAIN / CHUNK[0]), round(CHUNK[0] / BIN[0]) ** 3
    # One copy of the same bytes in memory: what a sort into storage order costs at
    # the least, one pass at copy speed (the destination is touched first, as our
    # writer reuses its buffers).
    pairs = [(positions, np.ones_like(positions)), (intensity, np.ones_like(intensity))]
    res: dict[str, list[float]] = {k: [] for k in OURS}
    slabs = [(i * 250.0, (i + 1) * 250.0) for i in range(4)]
    masks = [(positions[:, 2] >= lo) & (positions[:, 2] < hi) for lo, hi in slabs]
    slab_data = [(np.ascontiguousarray(positions[m]), np.ascontiguousarray(intensity[m])) for m in masks]
    for _ in range(repeat):
        for p in (one, parts, raw, files, raw_durable, one_durable):
            remove(p)

        def tofile():
            with open(raw, "wb") as f:
                positions.tofile(f)
                intensity.tofile(f)

        res["tofile"].append(timed(tofile))
        res["files_alone"].append(timed(lambda: files_alone(files, side, n, pos_bytes, val_bytes, bins, processes=False)))
        res["copy"].append(timed(lambda: copy_all_cores(pairs)))
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

        def tofile_durable():
            with open(raw_durable, "wb") as f:
                positions.tofile(f)
                intensity.tofile(f)
                f.flush()
                os.fsync(f.fileno())

        os.sync()  # the earlier outputs' dirty pages, so that neither side waits for them
        res["tofile_durable"].append(timed(tofile_durable))
        os.sync()
        res["write_durable"].append(timed(lambda: write_points(
            one_durable, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity},
            durable=True)))
    for p in (one, parts, raw, files, raw_durable, one_durable):
        remove(p)
    return res


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: sizes (ours), ref_sizes (the reference; a subset of sizes)."""
    sizes = sorted(cfg["sizes"])
    ref_sizes = sorted(cfg["ref_sizes"]) if ctx.reference else []
    by_size: dict[str, dict] = {}
    for n in sizes:
        ctx.log(f"points: ours at N = {n:,}")
        by_size[str(n)] = {k: measurement(v) for k, v in ours(n, ctx.workdir, ctx.repeat).items()}
    if ref_sizes:
        ctx.log(f"points: reference at N = {', '.join(f'{n:,}' for n in ref_sizes)}")
        ref = ctx.reference.call("points", sizes=ref_sizes, workdir=ctx.workdir, repeat=ctx.repeat)
        for n in ref_sizes:
            by_size[str(n)]["ref_write"] = measurement(ref["write"][str(n)])
            by_size[str(n)]["ref_read_all"] = measurement(ref["read_all"][str(n)])

    n = sizes[-1]
    m = {k: v["median"] for k, v in by_size[str(n)].items()}
    derived = {
        "n": n,
        "write_fraction_of_tofile": m["tofile"] / m["write"],
        "files_alone_fraction_of_tofile": m["tofile"] / m["files_alone"],
        "files_alone_and_copy_fraction_of_tofile": m["tofile"] / (m["files_alone"] + m["copy"]),
        "write_4_partitions_fraction_of_tofile": m["tofile"] / m["write_4_partitions"],
        "read_all_fraction_of_fromfile": m["fromfile"] / m["read_all"],
        "write_durable_fraction_of_tofile_durable": m["tofile_durable"] / m["write_durable"],
    }
    if "ref_write" in m:
        derived["write_speedup_vs_reference"] = m["ref_write"] / m["write"]
        derived["write_4_partitions_speedup_vs_reference"] = m["ref_write"] / m["write_4_partitions"]
        derived["read_all_speedup_vs_reference"] = m["ref_read_all"] / m["read_all"]
    return {"params": {"sizes": sizes, "ref_sizes": ref_sizes, "chunk_shape": CHUNK, "bin_shape": BIN,
                       "bytes_per_point": 16, "compressor": "none"},
            "by_size": by_size, "derived": derived}


ROWS = [
    ("raw `ndarray.tofile`", "tofile", lambda d: "ceiling"),
    ("the store's files alone (bytes already in storage order, no sort)", "files_alone",
     lambda d: f"{d['files_alone_fraction_of_tofile']:.0%} of tofile"),
    ("one copy of the same bytes in memory, all cores", "copy",
     lambda d: f"files alone + one copy: {d['files_alone_and_copy_fraction_of_tofile']:.0%} of tofile"),
    ("ours `write_points`", "write", lambda d: f"{d['write_fraction_of_tofile']:.0%} of tofile"),
    ("ours 4 x `write_points_partition` + `finalise`", "write_4_partitions",
     lambda d: f"{d['write_4_partitions_fraction_of_tofile']:.0%} of tofile"),
    ("durable: raw `ndarray.tofile` + `fsync`", "tofile_durable", lambda d: "ceiling, on stable storage"),
    ("durable: ours `write_points(durable=True)`", "write_durable",
     lambda d: f"{d['write_durable_fraction_of_tofile_durable']:.0%} of tofile + fsync"),
    ("raw `numpy.fromfile`", "fromfile", lambda d: "ceiling"),
    ("ours `read_points` (all)", "read_all", lambda d: f"{d['read_all_fraction_of_fromfile']:.0%} of fromfile"),
    ("zarr-vectors 0.9.2 `write_points`", "ref_write",
     lambda d: f"{speedup(1, d['write_speedup_vs_reference'])} "
               f"(partitioned: {speedup(1, d['write_4_partitions_speedup_vs_reference'])})"),
    ("zarr-vectors 0.9.2 `read_points` (all)", "ref_read_all",
     lambda d: speedup(1, d["read_all_speedup_vs_reference"])),
]


def table(result: dict) -> str:
    d = result["derived"]
    n = d["n"]
    row = result["by_size"][str(n)]
    lines = [f"N = {n:,} points ({n * 16 / 1e6:.0f} MB of positions + attribute); time: median [min-max] of "
             f"{row['write']['n']}", "",
             "| what | time (s) | throughput (M points/s) | comparison |", "|---|---|---|---|"]
    for name, key, note in ROWS:
        if key in row:
            mm = row[key]
            lines.append(f"| {name} | {mm['median']:.3f} [{mm['min']:.3f}-{mm['max']:.3f}] | "
                         f"{sig(n / mm['median'] / 1e6)} | {note(d)} |")
    return "\n".join(lines)


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
    reference = None if args.no_reference else ReferenceSide(args.ref_python)
    try:
        result = run({"sizes": [args.n], "ref_sizes": [args.n]}, Context(workdir, args.repeat, reference))
    finally:
        if reference:
            reference.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
