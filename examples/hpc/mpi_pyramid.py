"""MPI: build the coarse levels of a finalised store, one share per rank.

    mpirun -n 16 python -m mpi4py mpi_pyramid.py --output /scratch/scan.zarrvectors

Run it after the store was finalised (mpi_write.py, mpi_collective.py, or a
Slurm finalisation job). Rank r of n builds share r of every level's coarse
chunks; after the barrier, rank 0 checks that all n shares are there and
publishes the levels. Readers see no new level before that.
"""

import argparse

from mpi4py import MPI

from zarr_vectors.multiresolution.coarsen import build_pyramid


def factor_pair(text):
    coarsen, _, sparsity = text.partition(",")
    return float(coarsen), float(sparsity or 1.0)


def main():
    parser = argparse.ArgumentParser(description="Build a store's pyramid from MPI ranks, one share each.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--factors", type=factor_pair, action="append",
                        help="COARSEN[,SPARSITY] of the next level; repeat per level (default: 2,1 twice)")
    parser.add_argument("--threads", type=int, default=1, help="engine threads per rank (0: every core)")
    args = parser.parse_args()
    factors = args.factors or [(2.0, 1.0), (2.0, 1.0)]

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    size = comm.Get_size()

    # Each rank builds its share of every level
    part = build_pyramid(args.output, factors, part=(rank, size), threads=args.threads)
    print(f"rank {rank}: share {rank} of {size}: "
          f"{sum(level['chunk_count'] for level in part['levels'])} coarse chunks", flush=True)

    # All ranks wait before rank 0 publishes
    comm.Barrier()

    if rank == 0:
        report = build_pyramid(args.output, factors, finalise_parts=True)
        for level in report["levels"]:
            print(f"level {level['level']}: {level['vertex_count']} vertices", flush=True)
        print("Pyramid published.", flush=True)


if __name__ == "__main__":
    main()
