"""MPI for real: Open MPI's mpirun with 4 ranks and mpi4py.

* examples/hpc/mpi_write.py: rank-local x-slabs, Barrier, rank 0 finalises;
  slabs aligned with chunk boundaries and slabs that are not;
* examples/hpc/mpi_collective.py and tests/hpc/collective_worker.py:
  zarr_vectors.mpi.write_points_collective for ranks holding arbitrary points;
* examples/hpc/mpi_pyramid.py (each rank builds part (rank, size), Barrier,
  rank 0 publishes) and tests/hpc/pyramid_worker.py:
  zarr_vectors.mpi.build_pyramid_collective.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_multiset, concat, tree_digest

from . import collective_worker as worker
from . import pyramid_worker
from .hpcutil import EXAMPLES, describe, generated, job_env, read_ours, run

HERE = Path(__file__).resolve().parent
TOTAL = 20_000


def mpi_env():
    return job_env()


def check_reference(reference, store, expected, what):
    report = reference.validate(store, level=3)
    assert report["errors"] == [], f"{what}: reference validator (level 3): {report['errors']}"
    assert_same_multiset(reference.read(store), expected, f"{what}: reference read")


@pytest.mark.parametrize(
    "chunk,bin_", [(1250.0, 625.0), (1500.0, 375.0)], ids=["aligned-slabs", "unaligned-slabs"],
)
def test_mpi_write_x_slabs(mpirun, reference, tmp_path, chunk, bin_):
    """10000 over 4 ranks: 2500-wide slabs; chunk 1250 aligns with them, 1500 does not.
    (Few chunks: the reference reads and validates chunk by chunk in Python.)"""
    store = tmp_path / "scan.zarrvectors"
    proc = run([*mpirun, sys.executable, "-m", "mpi4py", EXAMPLES / "mpi_write.py", "--output", store,
                "--total-x", 10_000, "--chunk-size", chunk, "--bin-size", bin_, "--total-points", TOTAL,
                "--seed", 21], env=mpi_env(), timeout=180)
    assert proc.returncode == 0, describe(proc)
    assert "Wrote 4 partitions successfully." in proc.stdout, describe(proc)
    # mpirun forwards the ranks' output as it comes: lines may run together.
    counts = {int(r): int(c) for r, c in re.findall(r"rank (\d+): x in \[[^)]*\): (\d+) vertices", proc.stdout)}
    assert sorted(counts) == [0, 1, 2, 3] and sum(counts.values()) == TOTAL, describe(proc)

    expected = generated(0, total_points=TOTAL, seed=21)
    assert_same_multiset(read_ours(store), expected, f"mpi_write.py, chunk {chunk}")
    check_reference(reference, store, expected, f"mpi_write.py, chunk {chunk}")


def test_mpi_collective_example(mpirun, reference, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    proc = run([*mpirun, sys.executable, "-m", "mpi4py", EXAMPLES / "mpi_collective.py", "--output", store,
                "--chunk-size", 2000, "--bin-size", 500, "--total-points", TOTAL, "--seed", 22],
               env=mpi_env(), timeout=180)
    assert proc.returncode == 0, describe(proc)
    assert f"Store finalised: {TOTAL} vertices." in proc.stdout, describe(proc)
    expected = generated(2, total_points=TOTAL, seed=22)
    assert_same_multiset(read_ours(store), expected, "mpi_collective.py")
    check_reference(reference, store, expected, "mpi_collective.py")


# --------------------------------------------------------------------------
# write_points_collective: scenarios run by one mpirun of collective_worker.py
# --------------------------------------------------------------------------

def rank_records(out, proc, ranks=4):
    """records(scenario): the JSON record each rank wrote for a scenario, failing if a rank wrote none."""

    def records(scenario):
        files = [out / f"{scenario}.rank{r}.json" for r in range(ranks)]
        missing = [f.name for f in files if not f.exists()]
        assert not missing, f"ranks wrote no record: {missing}\n{describe(proc)}"
        return [json.loads(f.read_text()) for f in files]

    return records


@pytest.fixture(scope="module")
def collective(mpirun, tmp_path_factory):
    out = tmp_path_factory.mktemp("collective")
    proc = run([*mpirun, sys.executable, HERE / "collective_worker.py", out], env=mpi_env(), timeout=300)
    assert proc.returncode == 0, describe(proc)

    records = rank_records(out, proc)
    return out, records


def _all_points(scenario, ranks=range(4)):
    return concat([worker.rank_points(scenario, r) for r in ranks])


def _ok(recs):
    errors = [r["error"] for r in recs if "error" in r]
    assert not errors, f"ranks raised: {errors}"
    return [r["ok"] for r in recs]


def test_collective_arbitrary_points(collective, reference):
    out, records = collective
    results = _ok(records("arbitrary"))
    store = out / "arbitrary.zarrvectors"
    expected = _all_points("arbitrary")
    assert_same_multiset(read_ours(store), expected, "write_points_collective")
    check_reference(reference, store, expected, "write_points_collective")

    # One finalisation report (rank 0), ranges contiguous and chunk-aligned inside.
    assert results[0]["finalise"]["vertex_count"] == len(expected[0])
    assert all(r["finalise"] is None for r in results[1:])
    axis = results[0]["axis"]
    assert all(r["axis"] == axis for r in results)
    ranges = [tuple(r["range"]) for r in results if r["range"] is not None]
    assert len(ranges) >= 2, f"expected the work spread over ranks: {results}"
    for (lo0, hi0), (lo1, hi1) in zip(ranges, ranges[1:]):
        assert hi0 == lo1, f"ranges are not contiguous: {ranges}"
        assert float(hi0 / worker.CHUNK[axis]).is_integer(), f"inner edge {hi0} not on a chunk boundary"
    owned = sum(r["partition"]["vertex_count"] for r in results if r["partition"] is not None)
    assert owned == len(expected[0])
    # A rank may hold no points (rank 1) and still take part.
    assert worker.COUNTS["arbitrary"][1] == 0


def test_collective_single_chunk_has_one_owner(collective):
    out, records = collective
    results = _ok(records("one_chunk"))
    owners = [r["rank"] for r in results if r["range"] is not None]
    assert owners == [0], results
    # Written with durable=True (collective_worker.py): the option passes through.
    assert_same_multiset(read_ours(out / "one_chunk.zarrvectors"), _all_points("one_chunk"))


def test_collective_on_sub_communicators(collective):
    """comm=: two groups of two ranks write two stores independently."""
    out, records = collective
    _ok(records("sub_comm"))
    for color in (0, 1):
        expected = _all_points("sub_comm", ranks=[r for r in range(4) if r % 2 == color])
        assert_same_multiset(read_ours(out / f"sub_comm_{color}.zarrvectors"), expected, f"sub-communicator {color}")


@pytest.mark.parametrize(
    "scenario,bad_rank,words",
    [("bad_chunk", 2, ["chunk_shape"]), ("bad_attr", 1, ["attributes", "float64"]),
     ("bad_input", 3, ["not finite"])],
)
def test_collective_disagreement_raises_on_every_rank(collective, scenario, bad_rank, words):
    out, records = collective
    recs = records(scenario)
    for rank, rec in enumerate(recs):
        assert "error" in rec, f"rank {rank} did not raise in {scenario}: {rec}"
        cls, msg = rec["error"]
        assert cls == "InvalidInputError", (rank, cls, msg)
        for word in words:
            assert word in msg, f"rank {rank}: {msg!r} lacks {word!r}"
        if rank != bad_rank:
            assert f"rank {bad_rank}" in msg, f"rank {rank}: {msg!r} does not name rank {bad_rank}"
    assert not (out / f"{scenario}.zarrvectors").exists(), f"{scenario}: a store was written"


def test_collective_without_mpi4py_says_so(tmp_path):
    """mpi4py is imported lazily, with a clear error when it is missing."""
    code = (
        "import sys, numpy as np; sys.modules['mpi4py'] = None\n"
        "import zarr_vectors.mpi as m\n"
        "try:\n"
        "    m.write_points_collective('x', np.zeros((1, 3), np.float32), chunk_shape=(1, 1, 1))\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR', e)\n"
    )
    proc = run([sys.executable, "-c", code], cwd=tmp_path)
    assert proc.returncode == 0 and "IMPORT-ERROR" in proc.stdout and "pip install mpi4py" in proc.stdout, describe(proc)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------
# Pyramids built by ranks: one part each, rank 0 publishes
# --------------------------------------------------------------------------

def _levels(store):
    root = json.loads((store / "zarr.json").read_text())
    return [d["path"] for d in root["attributes"]["multiscales"][0]["datasets"]]


def _one_process_pyramid(store, where):
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    shutil.copytree(store, where)
    build_pyramid(str(where), pyramid_worker.FACTORS)
    return where


def test_mpi_pyramid_example(mpirun, reference, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    proc = run([*mpirun, sys.executable, "-m", "mpi4py", EXAMPLES / "mpi_write.py", "--output", store,
                "--chunk-size", 2500, "--bin-size", 625, "--total-points", TOTAL, "--seed", 23],
               env=mpi_env(), timeout=180)
    assert proc.returncode == 0, describe(proc)
    one = _one_process_pyramid(store, tmp_path / "one.zarrvectors")

    proc = run([*mpirun, sys.executable, "-m", "mpi4py", EXAMPLES / "mpi_pyramid.py", "--output", store,
                "--factors", "2,1", "--factors", "2,1"], env=mpi_env(), timeout=180)
    assert proc.returncode == 0, describe(proc)
    assert "Pyramid published." in proc.stdout, describe(proc)
    assert sorted(map(int, re.findall(r"rank (\d+): share \1 of 4", proc.stdout))) == [0, 1, 2, 3], describe(proc)

    assert _levels(store) == ["0", "1", "2"]
    for k in (0, 1, 2):
        ours = read_ours(store, level=k)
        assert_same_multiset(ours, read_ours(one, level=k), f"level {k}: 4 ranks vs one process")
        assert_same_multiset(reference.read(store, level=k), ours, f"level {k}: reference read")
    # Same bytes as the one-process build (both started from the same store).
    assert tree_digest(store) == tree_digest(one)
    report = reference.validate(store, level=5)
    assert report["errors"] == [], f"reference validator (level 5): {report['errors']}"


@pytest.fixture(scope="module")
def pyramid_runs(mpirun, tmp_path_factory):
    """Finalised stores, then one mpirun of pyramid_worker.py over all scenarios."""
    from zarr_vectors.types.points import write_points_partition

    from zarr_vectors import finalise

    out = tmp_path_factory.mktemp("pyramid")
    positions, attrs = generated(2, total_points=TOTAL, seed=24)
    for scenario in pyramid_worker.SCENARIOS:
        store = out / f"{scenario}.zarrvectors"
        write_points_partition(str(store), positions, chunk_shape=(2500.0,) * 3, bin_shape=(625.0,) * 3,
                               attributes=attrs, z_range=(0.0, 10_000.0))
        finalise(str(store))
    one = _one_process_pyramid(out / "ok.zarrvectors", out / "one.zarrvectors")
    proc = run([*mpirun, sys.executable, HERE / "pyramid_worker.py", out], env=mpi_env(), timeout=300)
    assert proc.returncode == 0, describe(proc)

    records = rank_records(out, proc)
    return out, one, records


def test_build_pyramid_collective(pyramid_runs, reference):
    out, one, records = pyramid_runs
    recs = records("ok")
    assert not [r["error"] for r in recs if "error" in r]
    store = out / "ok.zarrvectors"
    results = [r["ok"] for r in recs]
    assert [r["rank"] for r in results] == [0, 1, 2, 3]
    assert results[0]["pyramid"]["changed"] is True and all(r["pyramid"] is None for r in results[1:])
    # Every rank built a share; the shares add up to the published levels.
    for k, level in enumerate(results[0]["pyramid"]["levels"]):
        assert sum(r["part"]["levels"][k]["chunk_count"] for r in results) == level["chunk_count"]
        assert all(r["part"]["levels"][k]["chunk_count"] > 0 for r in results), results
    assert _levels(store) == ["0", "1", "2"]
    for k in (1, 2):
        assert_same_multiset(read_ours(store, level=k), read_ours(one, level=k), f"level {k}: collective vs one")
    assert tree_digest(store) == tree_digest(one)
    # Called again: nothing to do.
    again = [r["again"] for r in recs]
    assert again[0]["pyramid"]["changed"] is False
    assert all(r["part"]["changed"] is False for r in again)
    assert reference.validate(store, level=5)["errors"] == []


@pytest.mark.parametrize("scenario,bad_rank,words", [
    ("bad_factors", 2, ["factors"]),
    ("rank_fails", 3, ["threads"]),
])
def test_build_pyramid_collective_error_on_one_rank_raises_on_every_rank(pyramid_runs, scenario, bad_rank, words):
    out, _, records = pyramid_runs
    for rank, rec in enumerate(records(scenario)):
        assert "error" in rec, f"rank {rank} did not raise in {scenario}: {rec}"
        cls, msg = rec["error"]
        assert cls == "InvalidInputError", (rank, cls, msg)
        for word in words:
            assert word in msg, f"rank {rank}: {msg!r} lacks {word!r}"
        if rank != bad_rank:
            assert f"rank {bad_rank}" in msg, f"rank {rank}: {msg!r} does not name rank {bad_rank}"
    assert _levels(out / f"{scenario}.zarrvectors") == ["0"], "levels were published although a rank failed"
