"""Demo pipeline: the HPC guide's pattern on one machine.

Four "tasks" each write one z-slab of a synthetic point cloud with
write_points_partition (as Slurm array tasks would), then the finalisation
step runs exactly as the guide writes it. The result is checked against the
generated points and queried by bounding box.

    python examples/demo_pipeline.py /tmp/scan.zarrvectors
"""

import shutil
import subprocess
import sys
import time

import numpy as np
import zarr

from zarr_vectors.core.multiscale import write_multiscale_metadata
from zarr_vectors.core.store import open_store
from zarr_vectors.types.points import read_points, write_points_partition

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/scan.zarrvectors"
shutil.rmtree(path, ignore_errors=True)

n, total_z, n_slabs = 2_000_000, 10_000.0, 4
rng = np.random.default_rng(42)
positions = (rng.random((n, 3)) * [10_000.0, 10_000.0, total_z]).astype(np.float32)
intensity = rng.random(n).astype(np.float32)

t0 = time.perf_counter()
slab_dz = total_z / n_slabs
for slab in range(n_slabs):  # each iteration is one Slurm array task
    z_lo = slab * slab_dz
    z_hi = z_lo + slab_dz
    mask = (positions[:, 2] >= z_lo) & (positions[:, 2] < z_hi)
    r = write_points_partition(
        path,
        positions[mask],
        chunk_shape=(500.0, 500.0, 500.0),
        bin_shape=(125.0, 125.0, 125.0),
        attributes={"intensity": intensity[mask]},
        z_range=(z_lo, z_hi),
    )
    print(f"Slab {slab} done: {r['vertex_count']} vertices "
          f"({r['chunks_in_place']} chunks in place, {r['chunks_staged']} staged)")

root = open_store(path, mode="r+")  # the finalisation job
write_multiscale_metadata(root)
zarr.consolidate_metadata(root.store)
print(f"Store finalised in {time.perf_counter() - t0:.2f} s: {path}")

out = read_points(path)
assert len(out["positions"]) == n, "every generated point must be in the store"
box = ((1000.0, 1000.0, 1000.0), (1500.0, 1500.0, 1500.0))
sel = read_points(path, bbox=box)
expect = np.all((positions >= box[0]) & (positions <= box[1]), axis=1).sum()
assert len(sel["positions"]) == expect
print(f"Read back {len(out['positions'])} points; bbox query returned {expect} points as expected.")

if shutil.which("zvf"):
    subprocess.run(["zvf", "info", path], check=True)
