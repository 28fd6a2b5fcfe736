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

Prints Markdown tables and writes JSON to --json if given.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _workload import BIN, CHUNK, points  # noqa: E402

import zarr_vectors  # noqa: E402
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.points import write_points  # noqa: E402

FACTORS = [(2.0, 1.0), (2.0, 1.0)]

# Run by the reference venv's python: write the workload store, or time one build.
REF_SCRIPT = """
import json, sys, time, warnings, contextlib
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[1])
what, path = sys.argv[2], sys.argv[3]
with contextlib.redirect_stdout(sys.stderr):
    if what == "write":
        from _workload import BIN, CHUNK, points
        from zarr_vectors.types.points import write_points
        positions, intensity = points(int(sys.argv[4]))
        write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN, vertex_attributes={"intensity": intensity})
        out = {}
    else:
        from zarr_vectors.multiresolution.coarsen import build_pyramid
        factors = json.loads(sys.argv[4])
        t = time.perf_counter()
        build_pyramid(path, factors=[tuple(f) for f in factors])
        out = {"seconds": time.perf_counter() - t}
print(json.dumps(out))
"""

# Run by this interpreter in a child: only the build, then report peak RSS.
RSS_SCRIPT = """
import json, resource, sys
from zarr_vectors.multiresolution.coarsen import build_pyramid
if sys.argv[1] != "-":
    build_pyramid(sys.argv[1], json.loads(sys.argv[2]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def ref_run(python: str, *args: str) -> dict:
    proc = subprocess.run([python, "-c", REF_SCRIPT, HERE, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"reference side failed ({' '.join(args[:2])}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_copy(src: str, dst: str) -> str:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


# Linux carries a process's peak RSS over fork and exec into ru_maxrss, so a
# child forked from this (large) process would report at least our own peak. The
# measured child is therefore started by a small launcher process.
LAUNCH = ("import subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
          "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); sys.exit(p.returncode)")


def peak_rss_kib(store: str) -> int:
    proc = subprocess.run([sys.executable, "-c", LAUNCH, sys.executable, "-c", RSS_SCRIPT, store, json.dumps(FACTORS)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the peak-RSS build of {store} failed:\n{proc.stderr[-4000:]}")
    return int(proc.stdout.strip().splitlines()[-1])


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
    rss_sizes = args.rss_n or [max(1, args.n // 4), args.n]

    workdir = tempfile.mkdtemp(prefix="zvf-bench-pyr-", dir=args.workdir)
    res: dict = {"ours": [], "reference": [], "rss": []}
    try:
        # 1. Time, on a store written by the reference (ours writes it when the reference is skipped).
        source = f"{workdir}/source.zarrvectors"
        if args.no_reference:
            positions, intensity = points(args.n)
            write_points(source, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
            del positions, intensity
        else:
            ref_run(args.ref_python, "write", source, str(args.n))
        levels = None
        for _ in range(args.repeat):
            path = fresh_copy(source, f"{workdir}/ours.zarrvectors")
            t = time.perf_counter()
            report = build_pyramid(path, FACTORS)
            res["ours"].append(time.perf_counter() - t)
            levels = [lv["vertex_count"] for lv in report["levels"]]
            if not args.no_reference:
                path = fresh_copy(source, f"{workdir}/ref.zarrvectors")
                res["reference"].append(ref_run(args.ref_python, "build", path, json.dumps(FACTORS))["seconds"])
        shutil.rmtree(f"{workdir}/ours.zarrvectors", ignore_errors=True)
        shutil.rmtree(f"{workdir}/ref.zarrvectors", ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)

        # 2. Peak RSS of our build at two store sizes.
        baseline = peak_rss_kib("-")
        for n in rss_sizes:
            path = f"{workdir}/rss-{n}.zarrvectors"
            positions, intensity = points(n)
            write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
            del positions, intensity
            res["rss"].append({"n": n, "store_bytes": dir_bytes(path), "peak_rss_kib": peak_rss_kib(path),
                               "baseline_kib": baseline})
            shutil.rmtree(path, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"N = {args.n:,} points, factors {FACTORS} (levels of {', '.join(map(str, levels or []))} metavertices), "
          f"{args.repeat} repeat(s), median [min-max]; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print()
    print("| what | time (s) | throughput (M points/s) | comparison |")
    print("|---|---|---|---|")
    o = statistics.median(res["ours"])
    print(f"| ours `build_pyramid` | {o:.3f} [{min(res['ours']):.3f}-{max(res['ours']):.3f}] | "
          f"{args.n / o / 1e6:.1f} | |")
    if res["reference"]:
        r = statistics.median(res["reference"])
        print(f"| zarr-vectors 0.9.2 `build_pyramid` | {r:.3f} [{min(res['reference']):.3f}-"
              f"{max(res['reference']):.3f}] | {args.n / r / 1e6:.2f} | ours is {r / o:.1f}x faster |")
    print()
    print("| store | store size (MB) | peak RSS of our build (MB) | of which Python + imports (MB) |")
    print("|---|---|---|---|")
    for row in res["rss"]:
        print(f"| {row['n']:,} points | {row['store_bytes'] / 1e6:.0f} | {row['peak_rss_kib'] / 1024:.0f} | "
              f"{row['baseline_kib'] / 1024:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "repeat": args.repeat, "factors": FACTORS, "results": res,
                       "zvf": zarr_vectors.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
