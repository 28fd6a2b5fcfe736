"""Benchmark: a warm bbox query returning about 100 points, ours vs zarr-vectors 0.9.2.

One workload store of N points (written by ours; chunk 200^3, bin 50^3) and a
fixed cube sized to hold about 100 points at that density. Each side runs a
few untimed queries first (warm: metadata and files in the page cache), then
times each query on its own, reading positions and the attribute. Reported:
median and p90 latency. Ours is measured through Python ``read_points`` and
through the ``zvf query`` CLI (a whole process: start-up, open, query, write
the .npy output), next to a ``zvf --version`` process for the start-up alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Context, measurement, remove, speedup, timed  # noqa: E402
from _workload import BIN, CHUNK, DOMAIN, points  # noqa: E402

from zarr_vectors.types.points import read_points, write_points  # noqa: E402

TARGET_POINTS = 100
# Low corner of the query cube, as a fraction of the domain: inside one chunk, away from its faces.
CORNER = (0.31, 0.42, 0.53)


def query_box(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    side = DOMAIN * (TARGET_POINTS / n) ** (1 / 3)
    lo = tuple(round(f * DOMAIN, 3) for f in CORNER)
    return lo, tuple(round(v + side, 3) for v in lo)


def zvf_cli() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "zvf")
    return here if os.access(here, os.X_OK) else shutil.which("zvf")


def latency_loop(fn, warmup: int, reps: int, budget_s: float) -> list[float]:
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < reps and (len(samples) < 3 or time.perf_counter() - start < budget_s):
        samples.append(timed(fn))
    return samples


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n, reps, ref_reps, cli_reps, budget_s."""
    n = cfg["n"]
    store = f"{ctx.workdir}/query.zarrvectors"
    remove(store)
    positions, intensity = points(n)
    write_points(store, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
    box = query_box(n)
    inside = ((positions >= box[0]) & (positions <= box[1])).all(axis=1)
    expected = int(inside.sum())
    del positions, intensity
    ctx.log(f"query: N = {n:,}, box {box}, {expected} points inside")

    got: dict = {}
    ours = latency_loop(lambda: got.update(read_points(store, bbox=box)), 5, cfg["reps"], cfg["budget_s"])
    if got["vertex_count"] != expected:
        raise SystemExit(f"query returned {got['vertex_count']} points, {expected} lie inside {box}")
    m = {"ours_python": measurement(ours)}

    cli = zvf_cli()
    if cli:
        out = f"{ctx.workdir}/query-out.npy"
        bbox_arg = f"--bbox={','.join(map(str, box[0]))}:{','.join(map(str, box[1]))}"
        run_cli = lambda *a: subprocess.run([cli, *a], check=True, capture_output=True)  # noqa: E731
        m["ours_cli_process"] = measurement(latency_loop(lambda: run_cli("query", store, bbox_arg, "-o", out), 2,
                                                         cfg["cli_reps"], cfg["budget_s"]))
        m["cli_startup_only"] = measurement(latency_loop(lambda: run_cli("--version"), 2, cfg["cli_reps"],
                                                         cfg["budget_s"]))
    ref_count = None
    if ctx.reference:
        ref = ctx.reference.call("query", path=store, bbox=[list(box[0]), list(box[1])], warmup=5,
                                 reps=cfg["ref_reps"], budget_s=cfg["budget_s"])
        m["reference_python"] = measurement(ref["latency"])
        ref_count = ref["count"]
        if ref_count != expected:
            raise SystemExit(f"the reference's query returned {ref_count} points, {expected} lie inside {box}")
    remove(store)

    derived = {"ours_median_ms": m["ours_python"]["median"] * 1e3, "ours_p90_ms": m["ours_python"]["p90"] * 1e3}
    if "reference_python" in m:
        derived["speedup_vs_reference_median"] = m["reference_python"]["median"] / m["ours_python"]["median"]
    return {"params": {"n": n, "bbox": box, "points_returned": expected, "store_written_by": "ours",
                       "attributes": ["intensity"], "cli": cli is not None},
            "measurements": m, "derived": derived}


def table(result: dict) -> str:
    p, m = result["params"], result["measurements"]
    lines = [f"Store of N = {p['n']:,} points; box {p['bbox'][0]} - {p['bbox'][1]} holds {p['points_returned']} "
             "points; warm; latency in ms", "",
             "| what | median (ms) | p90 (ms) | min-max (ms) | queries | comparison |", "|---|---|---|---|---|---|"]
    rows = [("ours `read_points(bbox=...)` (Python)", "ours_python"),
            ("ours `zvf query` (whole CLI process)", "ours_cli_process"),
            ("`zvf --version` (process start-up alone)", "cli_startup_only"),
            ("zarr-vectors 0.9.2 `read_points(bbox=...)`", "reference_python")]
    for name, key in rows:
        if key not in m:
            continue
        mm = m[key]
        note = ""
        if key == "reference_python":
            note = speedup(1, result["derived"]["speedup_vs_reference_median"])
        lines.append(f"| {name} | {mm['median'] * 1e3:.3f} | {mm['p90'] * 1e3:.3f} | "
                     f"{mm['min'] * 1e3:.3f}-{mm['max'] * 1e3:.3f} | {mm['n']} | {note} |")
    return "\n".join(lines)
