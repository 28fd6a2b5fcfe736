"""Benchmark: MPI weak scaling of partitioned writes, 1 rank against 2 ranks.

Open MPI's mpirun starts K ranks of _mpi_rank.py (mpi4py); each writes its own
partition of N workload points (same N per rank) into one shared store with
``threads_per_rank`` engine threads, and the time runs from a barrier before
the writes to a barrier after them. Throughput = K * N / time; the ratio of the
2-rank to the 1-rank throughput is the weak-scaling figure. Rank 0 then
finalises the store (timed apart). mpirun's own start-up is not timed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import Context, measurement, sig  # noqa: E402


def mpirun_prefix(ranks: int) -> list[str]:
    exe = shutil.which("mpirun")
    if exe is None:
        raise RuntimeError("mpirun is not installed (Debian package openmpi-bin, scripts/deps/hpc.apt)")
    probe = subprocess.run([sys.executable, "-c", "import mpi4py"], capture_output=True)
    if probe.returncode != 0:
        raise RuntimeError("mpi4py is not installed in this environment (scripts/deps/hpc.pip)")
    cmd = [exe, "-n", str(ranks), "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n (points per rank), ranks, threads_per_rank."""
    n = cfg["n"]
    per_ranks: dict[str, dict] = {}
    for k in cfg["ranks"]:
        ctx.log(f"mpi: {k} rank(s) x N = {n:,}")
        args = {"n": n, "store": f"{ctx.workdir}/mpi.zarrvectors", "repeat": ctx.repeat,
                "threads": cfg["threads_per_rank"]}
        proc = subprocess.run([*mpirun_prefix(k), sys.executable, os.path.join(HERE, "_mpi_rank.py"),
                               json.dumps(args)], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"mpirun -n {k} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        got = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
        write = measurement(got["write_to_barrier"])
        per_ranks[str(k)] = {"write_to_barrier": write, "finalise": measurement(got["finalise"]),
                             "throughput_mpoints_s": k * n / write["median"] / 1e6}
    lo, hi = str(min(cfg["ranks"])), str(max(cfg["ranks"]))
    return {"params": {"n_per_rank": n, "ranks": cfg["ranks"], "threads_per_rank": cfg["threads_per_rank"],
                       "cores": os.cpu_count()},
            "by_ranks": per_ranks,
            "derived": {"throughput_ratio": per_ranks[hi]["throughput_mpoints_s"] / per_ranks[lo]["throughput_mpoints_s"],
                        "ranks_compared": [int(lo), int(hi)]}}


def table(result: dict) -> str:
    p, d = result["params"], result["derived"]
    lines = [f"N = {p['n_per_rank']:,} points per rank, {p['threads_per_rank']} engine thread(s) per rank, "
             f"{p['cores']} cores; time from barrier to barrier, median [min-max]", "",
             "| ranks | write (s) | throughput (M points/s) | finalise (s) | against 1 rank |", "|---|---|---|---|---|"]
    base = result["by_ranks"][str(min(p["ranks"]))]["throughput_mpoints_s"]
    for k, r in result["by_ranks"].items():
        w, f = r["write_to_barrier"], r["finalise"]
        lines.append(f"| {k} | {w['median']:.3f} [{w['min']:.3f}-{w['max']:.3f}] | {sig(r['throughput_mpoints_s'])} | "
                     f"{f['median']:.3f} | {r['throughput_mpoints_s'] / base:.2f}x |")
    return "\n".join(lines)
