"""Run under mpirun by test_mpi.py: write_points_collective in several scenarios.

    mpirun -n 4 python collective_worker.py OUT_DIR

Each scenario writes OUT_DIR/<scenario>.zarrvectors (or, for "sub_comm", one
store per sub-communicator) and OUT_DIR/<scenario>.rank<r>.json holding the
rank's result or the error it raised. Every rank runs every scenario: the
helper must raise on all ranks together, or the next scenario would hang.
The per-rank data comes from rank_points(), which the test calls too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

CHUNK = (400.0, 400.0, 400.0)
BIN = (100.0, 100.0, 100.0)
COUNTS = {"arbitrary": [3000, 0, 5000, 1200], "one_chunk": [50, 60, 70, 80], "sub_comm": [900, 800, 700, 600]}
SCENARIOS = ["arbitrary", "one_chunk", "sub_comm", "bad_chunk", "bad_attr", "bad_input"]


def rank_points(scenario: str, rank: int):
    """The points rank ``rank`` holds in ``scenario``: scattered over the
    whole box (not spatially partitioned), negative coordinates included."""
    counts = COUNTS.get(scenario, [500, 500, 500, 500])
    n = counts[rank]
    rng = np.random.default_rng([SCENARIOS.index(scenario), rank])
    if scenario == "one_chunk":
        positions = rng.uniform(810.0, 1190.0, size=(n, 3)).astype(np.float32)
    else:
        positions = rng.uniform((-2000.0, -500.0, -100.0), (3000.0, 700.0, 900.0), size=(n, 3)).astype(np.float32)
    attributes = {
        "intensity": rng.standard_normal(n).astype(np.float32),
        "rgb": rng.integers(0, 256, size=(n, 3), dtype=np.uint8),
        "id": (np.arange(n, dtype=np.int64) + rank * 1_000_000),
    }
    return positions, attributes


def main(out: Path) -> None:
    from mpi4py import MPI

    from zarr_vectors.mpi import write_points_collective

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    for scenario in SCENARIOS:
        positions, attributes = rank_points(scenario, rank)
        chunk, use_comm, store = CHUNK, comm, out / f"{scenario}.zarrvectors"
        if scenario == "bad_chunk" and rank == 2:
            chunk = (500.0, 500.0, 500.0)
        if scenario == "bad_attr" and rank == 1:
            attributes["intensity"] = attributes["intensity"].astype(np.float64)
        if scenario == "bad_input" and rank == 3:
            positions[7, 1] = np.nan
        if scenario == "sub_comm":
            use_comm = comm.Split(color=rank % 2, key=rank)
            store = out / f"sub_comm_{rank % 2}.zarrvectors"
        try:
            # one_chunk also runs durable, so that the option passes through the collective.
            result = write_points_collective(store, positions, chunk_shape=chunk, bin_shape=BIN,
                                             attributes=attributes, comm=use_comm, threads=1,
                                             durable=scenario == "one_chunk")
            record = {"ok": result}
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            record = {"error": [type(exc).__name__, str(exc)]}
        (out / f"{scenario}.rank{rank}.json").write_text(json.dumps(record, default=float))
        if use_comm is not comm:
            use_comm.Free()
        comm.Barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
