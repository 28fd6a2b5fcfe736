"""Benchmark: write time against chunk count, ours vs zarr-vectors 0.9.2.

N points of the workload (1000^3 domain, one float32 attribute, no
compression) written with cubic chunks of side c for c in chunk_sizes (500 ->
8 chunks ... 50 -> 8,000 chunks), each with bins_per_axis^3 bins per chunk so
that only the chunk count changes. A least-squares line time = a + b * chunks
gives b, the added cost per chunk. The reference is slow per chunk, so smaller
presets give it fewer points and chunk counts; its slope b does not depend on N.

The filesystem's own floor is measured next to them: the same bytes written as
three files per chunk (vertices, fragment index, attribute: open, write, close,
rename into a per-chunk directory, as a store does), from Python on one thread.
Its slope is what creating three files costs on this machine.
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


def raw_files(root: str, chunks: int, payload: bytes) -> None:
    """Write `payload` split over `chunks` x 3 files, each created under a temporary name and renamed."""
    per_file = max(1, len(payload) // (3 * chunks))
    view = memoryview(payload)
    for c in range(chunks):
        for a, array in enumerate(("vertices", "vertex_fragments", "intensity")):
            d = os.path.join(root, array, "c", str(c))
            os.makedirs(d, exist_ok=True)
            tmp, final = os.path.join(d, "0.tmp"), os.path.join(d, "0")
            start = ((3 * c + a) * per_file) % max(1, len(payload) - per_file)
            with open(tmp, "wb") as f:
                f.write(view[start:start + per_file])
            os.rename(tmp, final)


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
    payload = positions.tobytes() + intensity.tobytes()
    raw: dict[str, dict] = {}
    for c in cfg["chunk_sizes"]:
        samples = []
        for _ in range(ctx.repeat):
            remove(path)
            samples.append(timed(lambda: raw_files(path, chunk_count(c), payload)))
        raw[str(float(c))] = measurement(samples, chunks=chunk_count(c))
    remove(path)
    result = {"params": {"n": n, "bins_per_axis": bpa, "chunk_sizes": cfg["chunk_sizes"]},
              "ours": ours, "raw_files": raw, "derived": {"ours": fit(ours), "raw_files": fit(raw)}}
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
             "| chunk side | chunks | ours (s) | zarr-vectors 0.9.2 (s) | raw: 3 files per chunk (s) |",
             "|---|---|---|---|---|"]
    ref, raw = result.get("reference", {}), result.get("raw_files", {})
    span = lambda m: f"{m['median']:.3f} [{m['min']:.3f}-{m['max']:.3f}]" if m else "-"  # noqa: E731
    for c, m in result["ours"].items():
        lines.append(f"| {float(c):g} | {m['chunks']:,} | {span(m)} | {span(ref.get(c))} | {span(raw.get(c))} |")
    per_chunk = lambda side: f"{d[side]['b_us_per_chunk']:.1f}" if side in d else "-"  # noqa: E731
    lines.append(f"| fit: cost per chunk (µs) | | {per_chunk('ours')} | {per_chunk('reference')} | "
                 f"{per_chunk('raw_files')} |")
    return "\n".join(lines)
