"""Run under mpirun by test_mpi.py: build_pyramid_collective in several scenarios.

    mpirun -n 4 python pyramid_worker.py DIR

DIR holds one finalised store per scenario, <scenario>.zarrvectors, written
by the test. Each rank writes DIR/<scenario>.rank<r>.json with its result or
the error it raised. Every rank runs every scenario: the helper must raise on
all ranks together, or the next scenario would hang.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FACTORS = [(2.0, 1.0), (2.0, 1.0)]
SCENARIOS = ["ok", "bad_factors", "rank_fails"]


def main(out: Path) -> None:
    from mpi4py import MPI

    from zarr_vectors.mpi import build_pyramid_collective

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    for scenario in SCENARIOS:
        store = out / f"{scenario}.zarrvectors"
        factors, threads = FACTORS, 1
        if scenario == "bad_factors" and rank == 2:
            factors = [(2.0, 1.0), (4.0, 1.0)]
        if scenario == "rank_fails" and rank == 3:
            threads = -1  # invalid on this rank only: its part fails, the others succeed
        record = {}
        try:
            record["ok"] = build_pyramid_collective(store, factors, comm=comm, threads=threads)
            if scenario == "ok":  # again: nothing to do
                record["again"] = build_pyramid_collective(store, factors, comm=comm, threads=threads)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            record["error"] = [type(exc).__name__, str(exc)]
        (out / f"{scenario}.rank{rank}.json").write_text(json.dumps(record, default=float))
        comm.Barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
