"""Benchmark: build_pyramid(factors=[(2, 1), (2, 1)]), ours vs zarr-vectors 0.9.2, and our peak memory.

Workload (bench/_workload.py): N float32 xyz points uniform in a 1000^3 domain,
chunk 200^3, bin 50^3, one float32 attribute, local filesystem, no compression.

1. Time: the store is written once by the reference's write_points (in its own
   venv), then copied afresh before every run; each side builds the two levels
   on its own copy. The reference is timed inside its own process (imports
   excluded), ours inside this one. Median [min-max] of --repeat runs.
2. Memory: peak RSS (getrusage ru_maxrss) of a child process that only opens
   and builds the pyramid of a store we wrote, at two store sizes (--rss-n,
   default N/4 and N), next to the RSS of a child that only imports the
   package. Flat numbers mean memory does not grow with the store.

    python bench/bench_pyramid.py                        # N = 10^7, 3 repeats
    python bench/bench_pyramid.py --n 1000000 --repeat 1 --ref-python PATH

Part of bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import (Context, ReferenceSide, dir_bytes, measurement, remove, run_small_child, sig,  # noqa: E402
                     speedup, timed)
from _workload import BIN, CHUNK, points  # noqa: E402

from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.points import write_points  # noqa: E402

FACTORS = [(2.0, 1.0), (2.0, 1.0)]

# Run by this interpreter in a child: only the build, then report peak RSS.
RSS_SCRIPT = """
import json, resource, sys
from zarr_vectors.multiresolution.coarsen import build_pyramid
if sys.argv[1] != "-":
    build_pyramid(sys.argv[1], json.loads(sys.argv[2]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kib(store: str) -> int:
    return int(run_small_child(RSS_SCRIPT, store, json.dumps(FACTORS)).strip().splitlines()[-1])


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n, rss_sizes."""
    n = cfg["n"]
    source = f"{ctx.workdir}/pyramid-source.zarrvectors"
    ours_path = f"{ctx.workdir}/pyramid-ours.zarrvectors"
    remove(source)
    ctx.log(f"pyramid: N = {n:,}")
    # 1. Time, on a store written by the reference (ours writes it when the reference is skipped).
    if ctx.reference:
        ctx.reference.call("write", path=source, n=n)
    else:
        positions, intensity = points(n)
        write_points(source, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
        del positions, intensity
    ours, levels = [], []
    for _ in range(ctx.repeat):
        remove(ours_path)
        shutil.copytree(source, ours_path)
        report: dict = {}
        ours.append(timed(lambda: report.update(build_pyramid(ours_path, FACTORS))))
        levels = [lv["vertex_count"] for lv in report["levels"]]
    remove(ours_path)
    m = {"ours_build": measurement(ours)}
    if ctx.reference:
        got = ctx.reference.call("pyramid", source=source, workdir=ctx.workdir, factors=FACTORS, repeat=ctx.repeat)
        m["reference_build"] = measurement(got["build"])
    remove(source)

    # 2. Peak RSS of our build at two store sizes.
    baseline = peak_rss_kib("-")
    rss = []
    for size in cfg["rss_sizes"]:
        path = f"{ctx.workdir}/pyramid-rss-{size}.zarrvectors"
        positions, intensity = points(size)
        write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
        del positions, intensity
        rss.append({"n": size, "store_bytes": dir_bytes(path), "peak_rss_kib": peak_rss_kib(path),
                    "baseline_kib": baseline})
        remove(path)
    derived = {}
    if "reference_build" in m:
        derived["speedup_vs_reference"] = m["reference_build"]["median"] / m["ours_build"]["median"]
    return {"params": {"n": n, "factors": FACTORS, "levels_vertex_count": levels,
                       "source_written_by": "reference" if ctx.reference else "ours"},
            "measurements": m, "rss": rss, "derived": derived}


def table(result: dict) -> str:
    p, m = result["params"], result["measurements"]
    n = p["n"]
    lines = [f"N = {n:,} points, factors {p['factors']} (levels of {', '.join(map(str, p['levels_vertex_count']))} "
             f"metavertices); time: median [min-max] of {m['ours_build']['n']}", "",
             "| what | time (s) | throughput (M points/s) | comparison |", "|---|---|---|---|"]
    o = m["ours_build"]
    lines.append(f"| ours `build_pyramid` | {o['median']:.3f} [{o['min']:.3f}-{o['max']:.3f}] | "
                 f"{sig(n / o['median'] / 1e6)} | |")
    if "reference_build" in m:
        r = m["reference_build"]
        lines.append(f"| zarr-vectors 0.9.2 `build_pyramid` | {r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}] | "
                     f"{sig(n / r['median'] / 1e6)} | {speedup(1, result['derived']['speedup_vs_reference'])} |")
    lines += ["", "| store | store size (MB) | peak RSS of our build (MB) | of which Python + imports (MB) |",
              "|---|---|---|---|"]
    for row in result["rss"]:
        lines.append(f"| {row['n']:,} points | {sig(row['store_bytes'] / 1e6)} | {row['peak_rss_kib'] / 1024:.0f} | "
                     f"{row['baseline_kib'] / 1024:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rss-n", type=int, nargs=2, default=None, metavar=("SMALL", "LARGE"),
                    help="store sizes for the peak-RSS runs (default: N/4 and N)")
    ap.add_argument("--ref-python", default=os.environ.get("ZVF_REFERENCE_PYTHON",
                                                          ".cache/reference-venv/bin/python"))
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--workdir", default=None, help="directory on the filesystem to measure (default: a temp dir)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="zvf-bench-pyr-", dir=args.workdir)
    reference = None if args.no_reference else ReferenceSide(args.ref_python)
    try:
        result = run({"n": args.n, "rss_sizes": args.rss_n or [max(1, args.n // 4), args.n]},
                     Context(workdir, args.repeat, reference))
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
