"""MPI: every rank writes its own x-slab of one store, then rank 0 finalises.

    mpirun -n 16 python -m mpi4py mpi_write.py --output /scratch/scan.zarrvectors

(``python -m mpi4py`` aborts every rank when one raises, instead of leaving
the others waiting in the barrier.) The two loaders generate a synthetic slab
(synthetic_scan.py, next to this file); replace them with code that reads
the rank's slab. Slabs need not align with chunk boundaries.
"""

import argparse

import zarr
from mpi4py import MPI

from synthetic_scan import DEFAULT_POINTS, load_range
from zarr_vectors.core.multiscale import write_multiscale_metadata
from zarr_vectors.core.store import open_store
from zarr_vectors.types.points import write_points_partition

X = 0  # the slab axis


def load_positions_x_range(x_lo, x_hi, *, total_points=DEFAULT_POINTS, seed=0, total_x=10_000.0):
    return load_range(X, x_lo, x_hi, total_points=total_points, seed=seed, extent=total_x)[0]


def load_attrs_x_range(x_lo, x_hi, *, total_points=DEFAULT_POINTS, seed=0, total_x=10_000.0):
    return load_range(X, x_lo, x_hi, total_points=total_points, seed=seed, extent=total_x)[1]


def main():
    parser = argparse.ArgumentParser(description="Write a ZV store from MPI ranks, one x-slab each.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--total-x", type=float, default=10_000.0)
    parser.add_argument("--chunk-size", type=float, default=500.0)
    parser.add_argument("--bin-size", type=float, default=125.0)
    parser.add_argument("--total-points", type=int, default=DEFAULT_POINTS,
                        help="points in the whole synthetic cloud")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="engine threads per rank (0: every core)")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    size = comm.Get_size()

    # Partition coordinate space by x-slabs; neighbours compute their shared
    # edge with the same expression, so the half-open ranges meet exactly.
    x_lo = args.total_x * rank / size
    x_hi = args.total_x * (rank + 1) / size

    # Each rank loads and writes its own x-slab
    data = dict(total_points=args.total_points, seed=args.seed, total_x=args.total_x)
    positions = load_positions_x_range(x_lo, x_hi, **data)
    attrs = load_attrs_x_range(x_lo, x_hi, **data)

    write_points_partition(
        args.output,
        positions,
        chunk_shape=(args.chunk_size,) * 3,
        bin_shape=(args.bin_size,) * 3,
        attributes={"intensity": attrs},
        x_range=(x_lo, x_hi),
        threads=args.threads,
    )
    print(f"rank {rank}: x in [{x_lo}, {x_hi}): {len(positions)} vertices", flush=True)

    # All ranks wait before rank 0 finalises
    comm.Barrier()

    if rank == 0:
        root = open_store(args.output, mode="r+")
        write_multiscale_metadata(root)
        zarr.consolidate_metadata(root.store)
        print(f"Wrote {size} partitions successfully.", flush=True)


if __name__ == "__main__":
    main()
