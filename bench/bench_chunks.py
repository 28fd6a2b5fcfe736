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

Both are measured again on a tmpfs (/dev/shm) when there is one: there the
filesystem costs next to nothing, so the slope is the engine's own cost per
chunk.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

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


def tmpfs_dir() -> str | None:
    """/dev/shm if it is a writable tmpfs, else None."""
    try:
        with open("/proc/mounts") as f:
            mounted = any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in f)
    except OSError:
        return None
    return "/dev/shm" if mounted and os.access("/dev/shm", os.W_OK) else None


def series(ctx: Context, root: str, sizes: list[float], write) -> dict[str, dict]:
    """Median [min-max] of `write(path, side)` for each chunk side, in a fresh path under root."""
    path = f"{root}/chunks.zarrvectors"
    out: dict[str, dict] = {}
    for c in sizes:
        samples = []
        for _ in range(ctx.repeat):
            remove(path)
            samples.append(timed(lambda: write(path, c)))
        out[str(float(c))] = measurement(samples, chunks=chunk_count(c))
    remove(path)
    return out


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n, chunk_sizes, ref_n, ref_chunk_sizes, bins_per_axis; tmpfs (default: /dev/shm if present)."""
    n, bpa = cfg["n"], cfg["bins_per_axis"]
    positions, intensity = points(n)
    payload = positions.tobytes() + intensity.tobytes()

    def ours(path: str, c: float) -> None:
        write_points(path, positions, chunk_shape=(c, c, c), bin_shape=(c / bpa,) * 3,
                     attributes={"intensity": intensity})

    def raw(path: str, c: float) -> None:
        raw_files(path, chunk_count(c), payload)

    sizes = cfg["chunk_sizes"]
    ctx.log(f"chunks: ours and raw files, {len(sizes)} chunk sizes")
    result = {"params": {"n": n, "bins_per_axis": bpa, "chunk_sizes": sizes},
              "ours": series(ctx, ctx.workdir, sizes, ours), "raw_files": series(ctx, ctx.workdir, sizes, raw)}
    result["derived"] = {"ours": fit(result["ours"]), "raw_files": fit(result["raw_files"])}
    shm = cfg.get("tmpfs", tmpfs_dir())
    if shm:
        ctx.log(f"chunks: the same on tmpfs ({shm})")
        root = tempfile.mkdtemp(prefix="zvf-bench-chunks-", dir=shm)
        try:
            result["ours_tmpfs"] = series(ctx, root, sizes, ours)
            result["raw_files_tmpfs"] = series(ctx, root, sizes, raw)
        finally:
            shutil.rmtree(root, ignore_errors=True)  # memory, not disk: no inode scans to avoid
        result["params"]["tmpfs"] = shm
        result["derived"]["ours_tmpfs"] = fit(result["ours_tmpfs"])
        result["derived"]["raw_files_tmpfs"] = fit(result["raw_files_tmpfs"])
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


COLUMNS = [("ours", "ours (s)"), ("reference", "zarr-vectors 0.9.2 (s)"), ("raw_files", "raw: 3 files per chunk (s)"),
           ("ours_tmpfs", "ours, tmpfs (s)"), ("raw_files_tmpfs", "raw, tmpfs (s)")]


def table(result: dict) -> str:
    p, d = result["params"], result["derived"]
    cols = [(k, title) for k, title in COLUMNS if k in result]
    lines = [f"Ours at N = {p['n']:,}" + (f", the reference at N = {p['ref_n']:,}" if "reference" in result else "")
             + f"; {p['bins_per_axis']}^3 bins per chunk; time: median [min-max]"
             + (f"; tmpfs: {p['tmpfs']}" if "tmpfs" in p else ""), "",
             "| chunk side | chunks | " + " | ".join(t for _, t in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    span = lambda m: f"{m['median']:.3f} [{m['min']:.3f}-{m['max']:.3f}]" if m else "-"  # noqa: E731
    for c, m in result["ours"].items():
        lines.append(f"| {float(c):g} | {m['chunks']:,} | " + " | ".join(span(result[k].get(c)) for k, _ in cols) + " |")
    lines.append("| fit: cost per chunk (µs) | | " + " | ".join(f"{d[k]['b_us_per_chunk']:.1f}" for k, _ in cols) + " |")
    return "\n".join(lines)
