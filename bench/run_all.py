"""Run the whole benchmark suite: one command, one JSON file, plots and Markdown tables.

    .venv/bin/python bench/run_all.py --size full --out-dir docs/bench     # issue 6's sizes, 3 repeats
    .venv/bin/python bench/run_all.py --size small --repeat 5
    .venv/bin/python bench/run_all.py --size tiny --repeat 1 --only query,mpi --no-reference
    bash scripts/bench.sh --size full                                       # the same, after bootstrap

Each benchmark compares against its ceiling and against zarr-vectors 0.9.2 in
the same run (the reference runs in its own venv, --ref-python, timed inside
its own process). The writes are also measured against floors: the store's
files alone (the same bytes, already in storage order, as the same files) and
one copy of the bytes in memory; and, durable, write_points(durable=True)
against tofile + fsync (both on stable storage at the end). Sizes: tiny (a few thousand points, seconds: the smoke test),
small (up to 10^6 points, minutes), full (workload A at 10^7 points, as issue 6).

Writes to --out-dir (default bench/results/<UTC time>-<size>/):
  results.json      machine, versions, every measurement (all samples, median, min, max, p90), the targets
  tables.md         the Markdown tables printed at the end, ready for docs/benchmarks.md
  *.png             time against chunk count, time against point count, MPI ranks
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common  # noqa: E402
import bench_chunks  # noqa: E402
import bench_memory  # noqa: E402
import bench_mpi  # noqa: E402
import bench_points  # noqa: E402
import bench_pyramid  # noqa: E402
import bench_query  # noqa: E402
import bench_zstd  # noqa: E402

# name -> (module with run(cfg, ctx) and table(result), title)
BENCHMARKS = {
    "points": (bench_points, "Workload A: write and read all, against point count"),
    "zstd": (bench_zstd, "Write with zstd against zstd alone"),
    "chunks": (bench_chunks, "Write time against chunk count"),
    "query": (bench_query, "Bbox query returning about 100 points (warm)"),
    "pyramid": (bench_pyramid, "build_pyramid, 2 levels"),
    "memory": (bench_memory, "Peak memory of write_points_partition"),
    "mpi": (bench_mpi, "MPI weak scaling"),
}

ALL_CHUNK_SIDES = [500.0, 250.0, 200.0, 125.0, 100.0, 62.5, 50.0]  # 8 ... 8,000 chunks in the 1000^3 domain

PRESETS: dict[str, dict[str, dict]] = {
    "tiny": {
        "points": {"sizes": [2_000, 5_000], "ref_sizes": [2_000, 5_000]},
        "zstd": {"n": 5_000},
        "chunks": {"n": 5_000, "chunk_sizes": [500.0, 250.0, 200.0], "ref_n": 2_000,
                   "ref_chunk_sizes": [500.0, 250.0], "bins_per_axis": 4},
        "query": {"n": 5_000, "reps": 50, "ref_reps": 10, "cli_reps": 3, "budget_s": 1.0},
        "pyramid": {"n": 5_000, "rss_sizes": [5_000]},
        "memory": {"n": 5_000},
        "mpi": {"n": 5_000, "ranks": [1, 2], "threads_per_rank": 1},
    },
    "small": {
        "points": {"sizes": [10_000, 100_000, 1_000_000], "ref_sizes": [10_000, 100_000, 1_000_000]},
        "zstd": {"n": 1_000_000},
        "chunks": {"n": 1_000_000, "chunk_sizes": ALL_CHUNK_SIDES, "ref_n": 100_000,
                   "ref_chunk_sizes": [500.0, 250.0, 200.0, 125.0, 100.0], "bins_per_axis": 4},
        "query": {"n": 1_000_000, "reps": 500, "ref_reps": 50, "cli_reps": 10, "budget_s": 5.0},
        "pyramid": {"n": 1_000_000, "rss_sizes": [250_000, 1_000_000]},
        "memory": {"n": 1_000_000},
        "mpi": {"n": 1_000_000, "ranks": [1, 2], "threads_per_rank": 1},
    },
    "full": {
        "points": {"sizes": [10_000, 100_000, 1_000_000, 10_000_000],
                   "ref_sizes": [10_000, 100_000, 1_000_000, 10_000_000]},
        "zstd": {"n": 10_000_000},
        "chunks": {"n": 1_000_000, "chunk_sizes": ALL_CHUNK_SIDES, "ref_n": 1_000_000,
                   "ref_chunk_sizes": ALL_CHUNK_SIDES, "bins_per_axis": 4},
        "query": {"n": 10_000_000, "reps": 2_000, "ref_reps": 200, "cli_reps": 20, "budget_s": 10.0},
        "pyramid": {"n": 10_000_000, "rss_sizes": [2_500_000, 10_000_000]},
        "memory": {"n": 10_000_000},
        "mpi": {"n": 10_000_000, "ranks": [1, 2], "threads_per_rank": 1},
    },
}


# ---- targets of issue 6 -----------------------------------------------------------


def targets(bench: dict[str, dict]) -> list[dict[str, Any]]:
    """Each target of issue 6 that this run measured: the figure, the bar, and whether it is met."""
    out: list[dict[str, Any]] = []

    def add(what: str, target: str, value: float, bar: float, higher_is_better: bool, shown: str) -> None:
        met = value >= bar if higher_is_better else value <= bar
        out.append({"what": what, "target": target, "measured": value, "bar": bar, "shown": shown, "met": met,
                    "of_target": value / bar if higher_is_better else bar / value})

    def have(name: str) -> dict | None:
        r = bench.get(name)
        return r if r and "skipped" not in r else None

    if (r := have("points")):
        d = r["derived"]
        n = f"N = {d['n']:,}"
        if "write_speedup_vs_reference" in d:
            add(f"write_points vs zarr-vectors write ({n})", ">= 20x", d["write_speedup_vs_reference"], 20, True,
                f"{d['write_speedup_vs_reference']:.1f}x")
            add(f"4 x write_points_partition + finalise vs zarr-vectors write ({n})", ">= 20x",
                d["write_4_partitions_speedup_vs_reference"], 20, True,
                f"{d['write_4_partitions_speedup_vs_reference']:.1f}x")
        add(f"write_points vs ndarray.tofile ({n})", ">= 50%", d["write_fraction_of_tofile"], 0.5, True,
            f"{d['write_fraction_of_tofile']:.0%}")
        add(f"4 x write_points_partition + finalise vs tofile ({n})", ">= 50%",
            d["write_4_partitions_fraction_of_tofile"], 0.5, True, f"{d['write_4_partitions_fraction_of_tofile']:.0%}")
        if "write_durable_fraction_of_tofile_durable" in d:  # the same target with both on stable storage
            add(f"write_points(durable=True) vs tofile + fsync ({n})", ">= 50%",
                d["write_durable_fraction_of_tofile_durable"], 0.5, True,
                f"{d['write_durable_fraction_of_tofile_durable']:.0%}")
        add(f"read all vs numpy.fromfile ({n})", ">= 50%", d["read_all_fraction_of_fromfile"], 0.5, True,
            f"{d['read_all_fraction_of_fromfile']:.0%}")
    if (r := have("zstd")):
        v = r["derived"]["write_zstd_fraction_of_zstd_alone"]
        add(f"write with zstd vs zstd alone on all cores (N = {r['params']['n']:,})", ">= 70%", v, 0.7, True, f"{v:.0%}")
    if (r := have("chunks")):
        v = r["derived"]["ours"]["b_us_per_chunk"]
        extra = ""
        if "reference" in r["derived"]:
            extra = f" (reference: {r['derived']['reference']['b_us_per_chunk']:.0f} µs)"
        add(f"added write cost per chunk (N = {r['params']['n']:,})", "<= 50 µs", v, 50, False,
            f"{v:.1f} µs{extra}; the files alone: {r['derived']['files_alone']['b_us_per_chunk']:.1f} µs")
        if "ours_tmpfs" in r["derived"]:  # the same without the disk: the engine's own cost
            v = r["derived"]["ours_tmpfs"]["b_us_per_chunk"]
            add(f"added write cost per chunk on tmpfs (N = {r['params']['n']:,})", "<= 50 µs", v, 50, False,
                f"{v:.1f} µs; the files alone: {r['derived']['files_alone_tmpfs']['b_us_per_chunk']:.1f} µs")
    if (r := have("query")):
        d = r["derived"]
        add(f"bbox query, {r['params']['points_returned']} points, median (warm)", "<= 0.5 ms", d["ours_median_ms"],
            0.5, False, f"{d['ours_median_ms']:.3f} ms (p90 {d['ours_p90_ms']:.3f} ms)")
        if "speedup_vs_reference_median" in d:
            add("bbox query vs zarr-vectors (median)", ">= 5x", d["speedup_vs_reference_median"], 5, True,
                f"{d['speedup_vs_reference_median']:.1f}x")
    if (r := have("pyramid")) and "speedup_vs_reference" in r["derived"]:
        v = r["derived"]["speedup_vs_reference"]
        add(f"build_pyramid 2 levels vs zarr-vectors (N = {r['params']['n']:,})", ">= 10x", v, 10, True, f"{v:.1f}x")
    if (r := have("memory")):
        d = r["derived"]
        add(f"peak RSS of write_points_partition above baseline (N = {r['params']['n']:,})",
            "<= 2 x input + 100 MB", d["peak_above_baseline_mib"], d["limit_mib"], False,
            f"{d['peak_above_baseline_mib']:.0f} MiB of {d['limit_mib']:.0f} MiB allowed")
    if (r := have("mpi")):
        v = r["derived"]["throughput_ratio"]
        lo, hi = r["derived"]["ranks_compared"]
        add(f"MPI weak scaling, {hi} ranks vs {lo} (N = {r['params']['n_per_rank']:,} per rank)", ">= 1.7x", v, 1.7,
            True, f"{v:.2f}x")
    return out


def targets_table(rows: list[dict]) -> str:
    lines = ["| what | target | measured | met |", "|---|---|---|---|"]
    for t in rows:
        lines.append(f"| {t['what']} | {t['target']} | {t['shown']} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


# ---- plots ---------------------------------------------------------------------------


def plot_all(results: dict, out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench, written = results["benchmarks"], []
    stamp = f"{results['size']} run of {results['created_utc'][:10]}, {results['machine']['cores']} cores"

    def save(fig, name: str) -> None:
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    def errorbar(ax, xs, ms, **kw):
        ys = [m["median"] for m in ms]
        err = [[y - m["min"] for y, m in zip(ys, ms)], [m["max"] - y for y, m in zip(ys, ms)]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, **kw)

    if (r := bench.get("chunks")) and "skipped" not in r:
        sides = [s for s in ("ours", "reference") if s in r]
        fig, axes = plt.subplots(1, len(sides), figsize=(5.5 * len(sides), 4), squeeze=False)
        for ax, side in zip(axes[0], sides):
            ms = list(r[side].values())
            xs = [m["chunks"] for m in ms]
            fit = r["derived"][side]
            errorbar(ax, xs, ms, label="median [min-max]", color="C0" if side == "ours" else "C3")
            line_x = [0, max(xs)]
            ax.plot(line_x, [fit["a_s"] + fit["b_us_per_chunk"] * 1e-6 * x for x in line_x], "--", color="gray",
                    label=f"fit: {fit['a_s']:.3f} s + {fit['b_us_per_chunk']:.1f} µs x chunks")
            if side == "ours":  # the filesystem's floor, same N; and both on tmpfs
                for key, color, style, label in (("files_alone", "C7", ":", "the files alone"),
                                                 ("ours_tmpfs", "C2", "-", "ours on tmpfs"),
                                                 ("files_alone_tmpfs", "C8", ":", "the files alone on tmpfs")):
                    if key in r:
                        got = list(r[key].values())
                        errorbar(ax, [m["chunks"] for m in got], got, color=color, linestyle=style,
                                 label=f"{label}, {r['derived'][key]['b_us_per_chunk']:.1f} µs x chunks")
            n = r["params"]["n"] if side == "ours" else r["params"]["ref_n"]
            ax.set_title(f"{'ours' if side == 'ours' else 'zarr-vectors 0.9.2'}: write of {n:,} points")
            ax.set_xlabel("chunks")
            ax.set_ylabel("time (s)")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        fig.suptitle(f"Write time against chunk count ({stamp})", fontsize=10)
        save(fig, "scaling_chunks.png")

    if (r := bench.get("points")) and "skipped" not in r:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        series = [("write", "ours write_points", "C0"), ("write_4_partitions", "ours 4 partitions + finalise", "C1"),
                  ("read_all", "ours read all", "C2"), ("ref_write", "zarr-vectors write_points", "C3"),
                  ("ref_read_all", "zarr-vectors read all", "C4"), ("tofile", "ndarray.tofile", "C7"),
                  ("fromfile", "numpy.fromfile", "C8")]
        for key, label, color in series:
            pts = [(int(n), row[key]) for n, row in r["by_size"].items() if key in row]
            if pts:
                pts.sort()
                errorbar(ax, [p[0] for p in pts], [p[1] for p in pts], label=label, color=color,
                         linestyle=":" if key in ("tofile", "fromfile") else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("points")
        ax.set_ylabel("time (s)")
        ax.set_title(f"Time against point count, workload A ({stamp})", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        save(fig, "scaling_points.png")

    if (r := bench.get("mpi")) and "skipped" not in r:
        fig, ax = plt.subplots(figsize=(5, 4))
        ks = sorted(int(k) for k in r["by_ranks"])
        thr = [r["by_ranks"][str(k)]["throughput_mpoints_s"] for k in ks]
        ax.plot(ks, thr, marker="o", label="measured")
        ax.plot(ks, [thr[0] * k / ks[0] for k in ks], "--", color="gray", label="ideal weak scaling")
        ax.set_xticks(ks)
        ax.set_xlabel("MPI ranks")
        ax.set_ylabel("throughput (M points/s)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{r['params']['n_per_rank']:,} points per rank, {r['params']['threads_per_rank']} thread(s) "
                     f"per rank\n({stamp})", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        save(fig, "mpi_ranks.png")
    return written


def render(results: dict, out_dir: str, plots: bool = True) -> str:
    """Write tables.md, the plots and results.json into out_dir; print the tables; return them."""
    names = list(results["benchmarks"])
    tables = []
    for name in names:
        r = results["benchmarks"][name]
        body = f"Skipped: {r['skipped']}" if "skipped" in r else BENCHMARKS[name][0].table(r)
        tables.append(f"### {BENCHMARKS[name][1]}\n\n{body}\n")
    m, v = results["machine"], results["versions"]
    header = (f"Command: `{results['command']}` ({results['created_utc']}). Machine: {m['cpu_model']}, {m['cores']} cores, "
              f"{m['ram_gib']} GiB RAM, Linux {m['kernel']}, {m['bench_dir_filesystem']['type']} "
              f"({m['bench_dir_filesystem']['device']}) under the bench directory, load average "
              f"{m['load_average_at_start'][0]:.1f} at start. Python {m['python']}, numpy {v['numpy']}, zarr {v['zarr']}, "
              f"ours {v['zarr_vectors_ours']}, zarr-vectors {v['zarr_vectors_reference'] or '(not run)'}, "
              f"zstandard {v['zstandard']}; commit {v['git_commit']}.\n")
    markdown = header + "\n" + "\n".join(tables) + "\n### Issue 6 targets\n\n" + targets_table(results["targets"]) + "\n"
    results["plots"] = [os.path.basename(p) for p in plot_all(results, out_dir)] if plots else []
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out_dir, "tables.md"), "w") as f:
        f.write(markdown)
    print(markdown)
    print(f"results in {out_dir}: results.json, tables.md, {', '.join(results['plots']) or 'no plots'}",
          file=sys.stderr)
    return markdown


# ---- running -------------------------------------------------------------------------


def default_ref_python() -> str:
    if os.environ.get("ZVF_REFERENCE_PYTHON"):
        return os.environ["ZVF_REFERENCE_PYTHON"]
    venv = os.environ.get("ZVF_REFERENCE_VENV") or os.path.join(_common.REPO, ".cache", "reference-venv")
    return os.path.join(venv, "bin", "python")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(PRESETS), default="small", help="workload sizes (default: small)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timed operation (default: 3)")
    ap.add_argument("--only", default=None, metavar="A,B",
                    help=f"run only these benchmarks, from: {', '.join(BENCHMARKS)}")
    ap.add_argument("--ref-python", default=default_ref_python(),
                    help="python of the venv holding zarr-vectors==0.9.2 (default: $ZVF_REFERENCE_PYTHON, "
                         "else $ZVF_REFERENCE_VENV/bin/python, else .cache/reference-venv/bin/python)")
    ap.add_argument("--no-reference", action="store_true", help="skip every comparison with zarr-vectors")
    ap.add_argument("--workdir", default=None, help="directory on the filesystem to measure (default: a temp dir)")
    ap.add_argument("--out-dir", default=None, help="where results.json, tables.md and the plots go")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--render", default=None, metavar="RESULTS_JSON",
                    help="run nothing: redo tables and plots of an earlier results.json (into --out-dir, default its directory)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.only:
        names = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in names if s not in BENCHMARKS]
        if unknown or not names:
            ap.error(f"--only: unknown benchmark(s) {unknown or args.only!r}; expected some of {', '.join(BENCHMARKS)}")
        args.only = names
    if args.workdir and not os.path.isdir(args.workdir):
        ap.error(f"--workdir {args.workdir!r} is not a directory")
    return args


def finite_numbers_ok(result: Any) -> bool:
    """Every median/min/max/p90 in result is finite and positive."""
    if isinstance(result, dict):
        if "samples" in result:
            return all(isinstance(result[k], (int, float)) and math.isfinite(result[k]) and result[k] > 0
                       for k in ("median", "min", "max", "p90"))
        return all(finite_numbers_ok(v) for v in result.values())
    if isinstance(result, list):
        return all(finite_numbers_ok(v) for v in result)
    return True


def main(argv: list[str] | None = None, log: Callable[[str], None] | None = None) -> dict:
    args = parse_args(argv)
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.render))
        os.makedirs(out_dir, exist_ok=True)
        results["targets"] = targets(results["benchmarks"])
        render(results, out_dir, plots=not args.no_plots)
        return results
    now = datetime.datetime.now(datetime.timezone.utc)
    out_dir = args.out_dir or os.path.join(HERE, "results", f"{now:%Y%m%dT%H%M%SZ}-{args.size}")
    os.makedirs(out_dir, exist_ok=True)
    names = args.only or list(BENCHMARKS)
    workdir = tempfile.mkdtemp(prefix="zvf-bench-", dir=args.workdir)
    reference = None
    results: dict[str, Any] = {
        "suite": "zvf benchmarks (bench/run_all.py)",
        "created_utc": now.isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0]) if argv is None else
                                                     "bench/run_all.py", *(sys.argv[1:] if argv is None else argv)]),
        "size": args.size, "repeat": args.repeat,
    }
    try:
        results["machine"] = _common.machine_info(workdir)
        if not args.no_reference:
            reference = _common.ReferenceSide(args.ref_python)
        results["versions"] = _common.versions(reference)
        ctx = _common.Context(workdir, args.repeat, reference, **({"log": log} if log else {}))
        results["benchmarks"] = {}
        for name in names:
            module = BENCHMARKS[name][0]
            try:
                results["benchmarks"][name] = module.run(PRESETS[args.size][name], ctx)
            except RuntimeError as exc:  # a missing optional tool (mpirun, mpi4py): say so and go on
                ctx.log(f"{name}: skipped: {exc}")
                results["benchmarks"][name] = {"skipped": str(exc)}
        results["targets"] = targets(results["benchmarks"])
    finally:
        if reference:
            reference.close()
        shutil.rmtree(workdir, ignore_errors=True)

    render(results, out_dir, plots=not args.no_plots)
    if not finite_numbers_ok(results["benchmarks"]):
        raise SystemExit("some measurement is not a finite positive number; see results.json")
    return results


if __name__ == "__main__":
    main()
