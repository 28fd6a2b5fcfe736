"""MPI ranks whose points are not spatially partitioned: one collective call.

    mpirun -n 16 python -m mpi4py mpi_collective.py --output /scratch/scan.zarrvectors

Each rank holds arbitrary points (here: every size-th point of a synthetic
cloud, from synthetic_scan.py next to this file; replace load_my_points with
your reader). write_points_collective moves each point to the rank that owns
its chunk, every owner writes one partition, and rank 0 finalises.
"""

import argparse

from mpi4py import MPI

from synthetic_scan import DEFAULT_POINTS, load_all
from zarr_vectors.mpi import write_points_collective


def load_my_points(rank, size, *, total_points=DEFAULT_POINTS, seed=0, extent=10_000.0):
    positions, intensity = load_all(2, total_points=total_points, seed=seed, extent=extent)
    return positions[rank::size], intensity[rank::size]


def main():
    parser = argparse.ArgumentParser(description="Write a ZV store from arbitrary points on every rank.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--extent", type=float, default=10_000.0)
    parser.add_argument("--chunk-size", type=float, default=500.0)
    parser.add_argument("--bin-size", type=float, default=125.0)
    parser.add_argument("--total-points", type=int, default=DEFAULT_POINTS,
                        help="points in the whole synthetic cloud")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="engine threads per rank (0: every core)")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    positions, intensity = load_my_points(comm.Get_rank(), comm.Get_size(), total_points=args.total_points,
                                          seed=args.seed, extent=args.extent)
    result = write_points_collective(
        args.output,
        positions,
        chunk_shape=(args.chunk_size,) * 3,
        bin_shape=(args.bin_size,) * 3,
        attributes={"intensity": intensity},
        comm=comm,
        threads=args.threads,
    )
    print(f"rank {result['rank']}: owns {result['range']} on axis {result['axis']}", flush=True)
    if result["finalise"] is not None:
        print(f"Store finalised: {result['finalise']['vertex_count']} vertices.", flush=True)


if __name__ == "__main__":
    main()
