"""Benchmark: write time against chunk count, ours vs zarr-vectors 0.9.2.

N points of the workload (1000^3 domain, one float32 attribute, no
compression) written with cubic chunks of side c for c in chunk_sizes (500 ->
8 chunks ... 50 -> 8,000 chunks), each with bins_per_axis^3 bins per chunk so
that only the chunk count changes. A least-squares line time = a + b * chunks
gives b, the added cost per chunk. The reference is slow per chunk, so smaller
presets give it fewer points and chunk counts; its slope b does not depend on N.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Context, fit_line, measurement, remove, timed  # noqa: E402
from _workload import DOMAIN, points  # noqa: E402

from zarr_vectors.types.points import write_points  # noqa: E402


def chunk_count(c: float) -> int:
    return round(DOMAIN / c) ** 3


def fit(by_chunk: dict[str, dict]) -> dict:
    xs = [chunk_count(float(c)) for c in by_chunk]
    ys = [m["median"] for m in by_chunk.values()]
    a, b = fit_line(xs, ys)
    return {"a_s": a, "b_us_per_chunk": b * 1e6}


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n, chunk_sizes, ref_n, ref_chunk_sizes, bins_per_axis."""
    n, bpa = cfg["n"], cfg["bins_per_axis"]
    positions, intensity = points(n)
    path = f"{ctx.workdir}/chunks.zarrvectors"
    ours: dict[str, dict] = {}
    for c in cfg["chunk_sizes"]:
        ctx.log(f"chunks: ours, chunk {c} ({chunk_count(c)} chunks)")
        samples = []
        for _ in range(ctx.repeat):
            remove(path)
            samples.append(timed(lambda: write_points(path, positions, chunk_shape=(c, c, c),
                                                      bin_shape=(c / bpa,) * 3, attributes={"intensity": intensity})))
        ours[str(float(c))] = measurement(samples, chunks=chunk_count(c))
    remove(path)
    result = {"params": {"n": n, "bins_per_axis": bpa, "chunk_sizes": cfg["chunk_sizes"]},
              "ours": ours, "derived": {"ours": fit(ours)}}
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


def table(result: dict) -> str:
    p, d = result["params"], result["derived"]
    lines = [f"Ours at N = {p['n']:,}" + (f", the reference at N = {p['ref_n']:,}" if "reference" in result else "")
             + f"; {p['bins_per_axis']}^3 bins per chunk; time: median [min-max]", "",
             "| chunk side | chunks | ours (s) | zarr-vectors 0.9.2 (s) |", "|---|---|---|---|"]
    ref = result.get("reference", {})
    for c, m in result["ours"].items():
        r = ref.get(c)
        rs = f"{r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}]" if r else "-"
        lines.append(f"| {float(c):g} | {m['chunks']:,} | {m['median']:.3f} [{m['min']:.3f}-{m['max']:.3f}] | {rs} |")
    fit_row = f"| fit: cost per chunk (µs) | | {d['ours']['b_us_per_chunk']:.1f} |"
    fit_row += f" {d['reference']['b_us_per_chunk']:.0f} |" if "reference" in d else " - |"
    lines.append(fit_row)
    return "\n".join(lines)
