"""Benchmark: write with zstd, against zstd alone compressing the same cell payloads on all cores.

Workload A at N points, written by ``write_points(..., compressor="zstd")``.
The baseline is the compression alone: the exact bytes our zstd codec
compresses (every cell of the same store written with no compression is the
vlen-bytes frame that zstd would get) are read into memory first, then
compressed with python-zstandard using the configuration our store declares
(its ``zarr.json``: level, checksum; content size in the frame as libzstd's
ZSTD_compress2 writes it), one frame per cell, spread over one thread per core.
python-zstandard releases the GIL while compressing, so the threads run in
parallel. Equal compressed totals show that the two did the same work.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Context, dir_bytes, measurement, remove, sig, timed  # noqa: E402
from _workload import BIN, CHUNK, points  # noqa: E402

from zarr_vectors.types.points import write_points  # noqa: E402


def cell_files(store: str) -> list[str]:
    """Every chunk cell file of level 0 (files under an array's c/ directory)."""
    found = []
    for d, _, files in os.walk(os.path.join(store, "0")):
        if f"{os.sep}c{os.sep}" in d + os.sep:
            found.extend(os.path.join(d, f) for f in files)
    return sorted(found)


def zstd_config(store: str) -> dict:
    with open(os.path.join(store, "0", "vertices", "zarr.json")) as f:
        codecs = json.load(f)["codecs"]
    zstd = [c for c in codecs if c.get("name") == "zstd"]
    if len(zstd) != 1:
        raise SystemExit(f"expected one zstd codec in {store}/0/vertices/zarr.json, found {codecs}")
    cfg = zstd[0].get("configuration", {})
    return {"level": int(cfg.get("level", 0)), "checksum": bool(cfg.get("checksum", False))}


def compress_all(payloads: list[bytes], threads: int, level: int, checksum: bool) -> int:
    """Compress each payload into its own frame on `threads` threads; return the compressed total."""
    import zstandard

    # One compressor per task: ZstdCompressor objects must not be shared between threads.
    def one(data: bytes) -> int:
        return len(zstandard.ZstdCompressor(level=level, write_checksum=checksum,
                                            write_content_size=True).compress(data))

    # Largest first, so that the two threads finish together.
    ordered = sorted(payloads, key=len, reverse=True)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(one, ordered))


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n."""
    n = cfg["n"]
    threads = os.cpu_count() or 1
    positions, intensity = points(n)
    plain, packed = f"{ctx.workdir}/zstd-none.zarrvectors", f"{ctx.workdir}/zstd-zstd.zarrvectors"
    ctx.log(f"zstd: N = {n:,}")

    def write(path: str, compressor: str) -> float:
        remove(path)
        return timed(lambda: write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN,
                                          attributes={"intensity": intensity}, compressor=compressor))

    res: dict[str, list[float]] = {"write_none": [], "write_zstd": [], "zstd_alone_all_cores": [],
                                   "zstd_alone_1_thread": []}
    # Each repeat times all four in turn, so that both sides meet the same machine
    # state (page cache, memory the host has taken back, writeback of earlier runs).
    payloads: list[bytes] = []
    conf: dict = {}
    ours_compressed = alone_compressed = 0
    for _ in range(ctx.repeat):
        res["write_none"].append(write(plain, "none"))
        res["write_zstd"].append(write(packed, "zstd"))
        if not payloads:
            conf = zstd_config(packed)
            for path in cell_files(plain):
                with open(path, "rb") as f:
                    payloads.append(f.read())
        ours_compressed = sum(os.path.getsize(p) for p in cell_files(packed))
        alone: dict[str, int] = {}
        res["zstd_alone_all_cores"].append(timed(lambda: alone.update(
            total=compress_all(payloads, threads, conf["level"], conf["checksum"]))))
        res["zstd_alone_1_thread"].append(timed(lambda: compress_all(payloads, 1, conf["level"], conf["checksum"])))
        alone_compressed = alone["total"]
    store_bytes = dir_bytes(packed)
    remove(plain)
    remove(packed)

    m = {k: measurement(v) for k, v in res.items()}
    payload_bytes = sum(map(len, payloads))
    return {
        "params": {"n": n, "chunk_shape": CHUNK, "bin_shape": BIN, "zstd": conf, "threads": threads,
                   "cells": len(payloads), "payload_bytes": payload_bytes,
                   "compressed_bytes_ours": ours_compressed, "compressed_bytes_zstd_alone": alone_compressed,
                   "store_bytes_zstd": store_bytes},
        "measurements": m,
        "derived": {
            "write_zstd_fraction_of_zstd_alone": m["zstd_alone_all_cores"]["median"] / m["write_zstd"]["median"],
            "zstd_alone_MBps": payload_bytes / m["zstd_alone_all_cores"]["median"] / 1e6,
            "write_zstd_MBps": payload_bytes / m["write_zstd"]["median"] / 1e6,
            "zstd_compressed_size_ratio_ours_vs_alone": ours_compressed / alone_compressed,
        },
    }


def table(result: dict) -> str:
    p, m, d = result["params"], result["measurements"], result["derived"]
    lines = [f"N = {p['n']:,} points, {p['cells']} cells, {sig(p['payload_bytes'] / 1e6)} MB of cell payloads; "
             f"zstd level {p['zstd']['level']} (0 = zstd's default), checksum {p['zstd']['checksum']}; "
             f"compressed: ours {sig(p['compressed_bytes_ours'] / 1e6)} MB, zstd alone "
             f"{sig(p['compressed_bytes_zstd_alone'] / 1e6)} MB", "",
             "| what | time (s) | MB/s of payload | comparison |", "|---|---|---|---|"]
    rows = [("ours `write_points`, no compression", "write_none", ""),
            ("ours `write_points`, zstd", "write_zstd", f"{d['write_zstd_fraction_of_zstd_alone']:.0%} of zstd alone"),
            (f"zstd alone, {p['threads']} threads (python-zstandard)", "zstd_alone_all_cores", "ceiling"),
            ("zstd alone, 1 thread", "zstd_alone_1_thread", "")]
    for name, key, note in rows:
        mm = m[key]
        lines.append(f"| {name} | {mm['median']:.3f} [{mm['min']:.3f}-{mm['max']:.3f}] | "
                     f"{sig(p['payload_bytes'] / mm['median'] / 1e6)} | {note} |")
    return "\n".join(lines)
