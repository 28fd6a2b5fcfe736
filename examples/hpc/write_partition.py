"""One Slurm array task: write one z-slab of a shared store.

    python write_partition.py --slab-index ${SLURM_ARRAY_TASK_ID} --n-slabs 20 --output /scratch/scan.zarrvectors

The two loaders generate a synthetic slab (synthetic_scan.py, next to this
file); replace them with code that reads your slab.
"""

import argparse
import os

from synthetic_scan import DEFAULT_POINTS, load_range
from zarr_vectors.types.points import write_points_partition

Z = 2  # the slab axis


def load_slab_positions(z_lo, z_hi, *, total_points=DEFAULT_POINTS, seed=0, total_z=10_000.0):
    return load_range(Z, z_lo, z_hi, total_points=total_points, seed=seed, extent=total_z)[0]


def load_slab_attributes(z_lo, z_hi, *, total_points=DEFAULT_POINTS, seed=0, total_z=10_000.0):
    return load_range(Z, z_lo, z_hi, total_points=total_points, seed=seed, extent=total_z)[1]


def main():
    parser = argparse.ArgumentParser(description="Write one z-slab partition of a ZV store.")
    parser.add_argument("--slab-index", type=int, required=True)
    parser.add_argument("--n-slabs", type=int, required=True)
    parser.add_argument("--output", type=str, required=True)
    parser.add_argument("--total-z", type=float, default=10_000.0)
    parser.add_argument("--chunk-size", type=float, default=500.0)
    parser.add_argument("--bin-size", type=float, default=125.0)
    parser.add_argument("--total-points", type=int, default=DEFAULT_POINTS,
                        help="points in the whole synthetic cloud")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0 <= args.slab_index < args.n_slabs:
        parser.error(f"--slab-index {args.slab_index} is not in 0..{args.n_slabs - 1}")

    chunk_shape = (args.chunk_size,) * 3
    # Neighbouring tasks compute their shared edge with the same expression,
    # so the half-open ranges meet exactly (no overlap, no gap).
    z_lo = args.total_z * args.slab_index / args.n_slabs
    z_hi = args.total_z * (args.slab_index + 1) / args.n_slabs

    data = dict(total_points=args.total_points, seed=args.seed, total_z=args.total_z)
    positions = load_slab_positions(z_lo, z_hi, **data)
    attributes = load_slab_attributes(z_lo, z_hi, **data)

    summary = write_points_partition(
        args.output,
        positions,
        chunk_shape=chunk_shape,
        bin_shape=(args.bin_size,) * 3,
        attributes={"intensity": attributes},
        z_range=(z_lo, z_hi),
        threads=int(os.environ.get("SLURM_CPUS_PER_TASK", 0)),  # 0: every core
    )
    print(f"Slab {args.slab_index} done: {len(positions)} vertices "
          f"(partition {summary['partition_id']})")


if __name__ == "__main__":
    main()
