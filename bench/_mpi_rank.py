"""One MPI rank of bench_mpi.py: write this rank's partition, time to a barrier.

    mpirun -n K python _mpi_rank.py '{"n": ..., "store": ..., "repeat": ..., "threads": ...}'

Weak scaling: every rank writes the same N workload points, shifted by
rank * 2000 along z into a slab of its own (a whole number of chunks), so each
rank does identical work and no chunk is shared. Rank 0 prints one JSON line.
"""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from mpi4py import MPI  # noqa: E402

from _fs import retire  # noqa: E402
from _workload import BIN, CHUNK, points  # noqa: E402

from zarr_vectors.core.multiscale import finalise  # noqa: E402
from zarr_vectors.types.points import write_points_partition  # noqa: E402

SLAB = 2000.0  # a multiple of the chunk side (200) that holds the whole 1000^3 domain

cfg = json.loads(sys.argv[1])
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
positions, intensity = points(cfg["n"])
positions[:, 2] += rank * SLAB
z_range = (rank * SLAB, (rank + 1) * SLAB)
write, final = [], []
for _ in range(cfg["repeat"]):
    if rank == 0:
        retire(cfg["store"])
    comm.Barrier()
    t0 = time.perf_counter()
    write_points_partition(cfg["store"], positions, chunk_shape=CHUNK, bin_shape=BIN,
                           attributes={"intensity": intensity}, z_range=z_range, threads=cfg["threads"])
    comm.Barrier()
    write.append(time.perf_counter() - t0)
    if rank == 0:
        t0 = time.perf_counter()
        report = finalise(cfg["store"])
        final.append(time.perf_counter() - t0)
    comm.Barrier()
if rank == 0:
    retire(cfg["store"])
    print(json.dumps({"ranks": size, "write_to_barrier": write, "finalise": final}), flush=True)
