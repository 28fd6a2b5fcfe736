"""Benchmark: peak memory of write_points_partition against the size of its input.

A child process loads the workload's arrays (N points: float32 positions and
one float32 attribute, from .npy files, so nothing else is allocated) and
writes them as one partition (chunk 200^3, bin 50^3; the partition owns every
chunk it touches, so all are written in place). Its peak RSS (ru_maxrss) is
compared with 2 x the input arrays + 100 MB, after subtracting the peak of a
child that only imports numpy and zarr_vectors, measured the same way. Both
children are started through a launcher, since ru_maxrss carries over fork.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Context, measurement, remove, run_small_child, sig  # noqa: E402
from _workload import BIN, CHUNK, points  # noqa: E402

import numpy as np  # noqa: E402

MIB = 2**20
ALLOWANCE_BYTES = 100 * 10**6

CHILD = """
import json, resource, sys
import numpy as np
from zarr_vectors.types.points import write_points_partition
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = {"baseline": peak()}
if sys.argv[1] != "-":
    store, pos_file, attr_file, chunk, bins = sys.argv[1:6]
    positions, intensity = np.load(pos_file), np.load(attr_file)
    out["loaded"] = peak()
    write_points_partition(store, positions, chunk_shape=json.loads(chunk), bin_shape=json.loads(bins),
                           attributes={"intensity": intensity}, z_range=(0.0, 2000.0))
    out["after_write"] = peak()
print(json.dumps(out))
"""


def child(*args: str) -> dict:
    return json.loads(run_small_child(CHILD, *args).strip().splitlines()[-1])


def run(cfg: dict, ctx: Context) -> dict:
    """cfg: n."""
    n = cfg["n"]
    ctx.log(f"memory: N = {n:,}")
    pos_file, attr_file = f"{ctx.workdir}/mem-positions.npy", f"{ctx.workdir}/mem-intensity.npy"
    positions, intensity = points(n)
    np.save(pos_file, positions)
    np.save(attr_file, intensity)
    input_bytes = positions.nbytes + intensity.nbytes
    del positions, intensity
    store = f"{ctx.workdir}/mem.zarrvectors"
    baseline, loaded, peak = [], [], []
    for _ in range(ctx.repeat):
        baseline.append(child("-")["baseline"] / MIB)
        remove(store)
        got = child(store, pos_file, attr_file, json.dumps(CHUNK), json.dumps(BIN))
        loaded.append(got["loaded"] / MIB)
        peak.append(got["after_write"] / MIB)
    for p in (store, pos_file, attr_file):
        remove(p)
    m = {"baseline_rss": measurement(baseline, "MiB"), "rss_after_load": measurement(loaded, "MiB"),
         "peak_rss": measurement(peak, "MiB")}
    above = m["peak_rss"]["median"] - m["baseline_rss"]["median"]
    limit = (2 * input_bytes + ALLOWANCE_BYTES) / MIB
    return {"params": {"n": n, "input_bytes": input_bytes, "chunk_shape": CHUNK, "bin_shape": BIN},
            "measurements": m,
            "derived": {"peak_above_baseline_mib": above, "limit_mib": limit, "fraction_of_limit": above / limit,
                        "peak_above_baseline_per_input_byte": above * MIB / input_bytes}}


def table(result: dict) -> str:
    p, m, d = result["params"], result["measurements"], result["derived"]
    mb = lambda k: f"{m[k]['median']:.0f} [{m[k]['min']:.0f}-{m[k]['max']:.0f}]"  # noqa: E731
    return "\n".join([
        f"N = {p['n']:,} points, input arrays {sig(p['input_bytes'] / MIB)} MiB; peak RSS in MiB, median [min-max]", "",
        "| what | MiB |", "|---|---|",
        f"| child that only imports numpy + zarr_vectors (baseline) | {mb('baseline_rss')} |",
        f"| child after loading the input | {mb('rss_after_load')} |",
        f"| child after `write_points_partition` (peak) | {mb('peak_rss')} |",
        f"| peak above baseline | {d['peak_above_baseline_mib']:.0f} |",
        f"| limit: 2 x input + 100 MB | {d['limit_mib']:.0f} ({d['fraction_of_limit']:.0%} used) |",
    ])
