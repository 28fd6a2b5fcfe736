"""The original HPC guide's code, as its users wrote it, runs against our package.

examples/hpc/ holds improved versions (docs/hpc.md says what changed and
why); this test keeps the guide's own samples working: the same module
paths, call signatures and keyword names. Only the loaders the guide leaves
to the reader are supplied (the synthetic cloud), and the MPI sample's
hard-coded /scratch path is replaced by a temporary one.
"""

from __future__ import annotations

import subprocess
import sys

from helpers import assert_same_multiset

from .hpcutil import EXAMPLES, check, describe, generated, job_env, read_ours, run

TOTAL = 800  # the guide fixes chunks at 500: few points, few chunk files

GUIDE_WRITE_PARTITION = '''\
import argparse
import numpy as np
from zarr_vectors.types.points import write_points_partition
from zarr_vectors.core.store import open_store
from zarr_vectors.core.multiscale import write_multiscale_metadata

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slab-index", type=int)
    parser.add_argument("--n-slabs", type=int)
    parser.add_argument("--output", type=str)
    args = parser.parse_args()

    chunk_shape = (500., 500., 500.)
    total_z = 10_000.0
    slab_dz  = total_z / args.n_slabs
    z_lo = args.slab_index * slab_dz
    z_hi = z_lo + slab_dz

    positions  = load_slab_positions(z_lo, z_hi)
    attributes = load_slab_attributes(z_lo, z_hi)

    write_points_partition(
        args.output,
        positions,
        chunk_shape=chunk_shape,
        bin_shape=(125., 125., 125.),
        attributes={"intensity": attributes},
        z_range=(z_lo, z_hi),
    )
    print(f"Slab {args.slab_index} done: {len(positions)} vertices")

if __name__ == "__main__":
    main()
'''

GUIDE_FINALISE = '''\
# finalise_store.py
import argparse, zarr
from zarr_vectors.core.store import open_store
from zarr_vectors.core.multiscale import write_multiscale_metadata
from zarr_vectors.multiresolution.coarsen import build_pyramid

parser = argparse.ArgumentParser()
parser.add_argument("--output")
args = parser.parse_args()

root = open_store(args.output, mode="r+")
write_multiscale_metadata(root)
zarr.consolidate_metadata(root.store)

build_pyramid(args.output,
              factors=[(2.0, 1.0), (2.0, 1.0)])
print("Store finalised.")
'''

GUIDE_MPI = '''\
from mpi4py import MPI
import numpy as np
from zarr_vectors.types.points import write_points_partition
from zarr_vectors.core.store import open_store
from zarr_vectors.core.multiscale import write_multiscale_metadata
import zarr

comm  = MPI.COMM_WORLD
rank  = comm.Get_rank()
size  = comm.Get_size()

# Partition coordinate space by x-slabs
total_x = 10_000.0
slab_dx  = total_x / size
x_lo = rank * slab_dx
x_hi = x_lo + slab_dx

# Each rank loads and writes its own x-slab
positions = load_positions_x_range(x_lo, x_hi)
attrs     = load_attrs_x_range(x_lo, x_hi)

write_points_partition(
    "/scratch/scan.zarrvectors",
    positions,
    chunk_shape=(500., 500., 500.),
    bin_shape=(125., 125., 125.),
    attributes={"intensity": attrs},
    x_range=(x_lo, x_hi),
)

# All ranks wait before rank 0 finalises
comm.Barrier()

if rank == 0:
    root = open_store("/scratch/scan.zarrvectors", mode="r+")
    write_multiscale_metadata(root)
    zarr.consolidate_metadata(root.store)
    print(f"Wrote {size} partitions successfully.")
'''


def loaders(axis: int, names: tuple[str, str], seed: int) -> str:
    """The reader's part the guide leaves out: load a slab of the synthetic cloud."""
    return (
        f"import sys\nsys.path.insert(0, {str(EXAMPLES)!r})\n"
        "from synthetic_scan import load_range\n"
        f"def {names[0]}(lo, hi):\n"
        f"    return load_range({axis}, lo, hi, total_points={TOTAL}, seed={seed})[0]\n"
        f"def {names[1]}(lo, hi):\n"
        f"    return load_range({axis}, lo, hi, total_points={TOTAL}, seed={seed})[1]\n"
    )


def test_guide_job_array_and_finalisation_as_written(reference, tmp_path):
    write = tmp_path / "write_partition.py"
    write.write_text(loaders(2, ("load_slab_positions", "load_slab_attributes"), 61) + GUIDE_WRITE_PARTITION)
    final = tmp_path / "finalise_store.py"
    final.write_text(GUIDE_FINALISE)
    store = tmp_path / "scan.zarrvectors"

    procs = [subprocess.Popen([sys.executable, str(write), "--slab-index", str(i), "--n-slabs", "4",
                               "--output", str(store)], env=job_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and f"Slab {i} done" in out, f"slab {i}: {p.returncode}\n{out}\n{err}"
    proc = check(run([sys.executable, final, "--output", store]))
    assert "Store finalised." in proc.stdout

    expected = generated(2, total_points=TOTAL, seed=61)
    assert_same_multiset(read_ours(store), expected, "the guide's scripts as written")
    report = reference.validate(store, level=3)
    assert report["errors"] == [], report["errors"]


def test_guide_mpi_script_as_written(mpirun, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    script = tmp_path / "mpi_write.py"
    code = GUIDE_MPI.replace('"/scratch/scan.zarrvectors"', repr(str(store)))
    script.write_text(loaders(0, ("load_positions_x_range", "load_attrs_x_range"), 62) + code)
    proc = run([*mpirun, sys.executable, "-m", "mpi4py", script], timeout=180)
    assert proc.returncode == 0 and "Wrote 4 partitions successfully." in proc.stdout, describe(proc)
    assert_same_multiset(read_ours(store), generated(0, total_points=TOTAL, seed=62), "the guide's MPI script")
