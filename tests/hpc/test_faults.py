"""Faults that clusters produce, with writers in separate processes as cluster
tasks are: examples/hpc/write_partition.py, finalise_store.py and `zvf`.

(a) a task killed with SIGKILL in the middle of writing, then re-run;
(b) a task that ran twice;
(c) two partitions claiming overlapping ranges, seen at write time, or only
    at finalisation when they were written to separate local stores and
    merged with rsync;
(d) a slab that never ran (a gap along the partition axis);
(e) finalisation run twice.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_multiset, diff_trees, list_files, select, tree_digest

from .hpcutil import check, describe, generated, job_env, python_script, read_ours, run, store_data_digest

HERE = Path(__file__).resolve().parent
TOTAL = 20_000
EXIT_CONFLICT = 6
TMP_SUFFIX = ".zvftmp"  # the POSIX store's temporary files: <key>.<unique>.zvftmp


def slab_args(store, i, n, *, total=TOTAL, seed=41, chunk=2500.0, total_z=10_000.0):
    """write_partition.py's arguments. Chunks of 2500 by default: few files,
    and slab edges at 10000/3 multiples cut through chunks (staged pieces)."""
    return ["--slab-index", i, "--n-slabs", n, "--output", store, "--total-points", total, "--seed", seed,
            "--chunk-size", chunk, "--bin-size", chunk / 4, "--total-z", total_z]


def write_slabs(store, indices, n, **kw):
    """Run write_partition.py for the given slabs, concurrently, like array tasks."""
    procs = [subprocess.Popen(python_script("write_partition.py", *slab_args(store, i, n, **kw)),
                              env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in indices]
    for i, p in zip(indices, procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"slab {i} of {n} failed ({p.returncode}):\n{out}\n{err}"


def finalise_script(store, *extra):
    return run(python_script("finalise_store.py", "--output", store, *extra))


def zvf(zvf_cli, *args):
    return run([zvf_cli, *args])


def expected_points(*, total=TOTAL, seed=41, lo=-np.inf, hi=np.inf):
    return generated(2, total_points=total, seed=seed, lo=lo, hi=hi)


def partition_ids(store):
    import zarr_vectors

    return {p["id"]: p for p in zarr_vectors.list_partitions(str(store))}


def slab_edges(i, n, total_z=10_000.0):
    return total_z * i / n, total_z * (i + 1) / n


# --------------------------------------------------------------------------
# (a) killed mid-write
# --------------------------------------------------------------------------

def test_killed_partition_refused_then_rerun_equals_clean_run(zv, zvf_cli, reference, tmp_path):
    n = 3  # slab edges at 3333.3 and 6666.7: chunks in place and chunks staged
    grid = dict(chunk=1000.0)  # 10 x 10 x 4 chunks per slab: room to stop in the middle
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, [0, 2], n, **grid)

    marker = tmp_path / "stalled"
    victim = subprocess.Popen(
        [sys.executable, str(HERE / "stall_writer.py"), str(marker), "100",
         *map(str, slab_args(store, 1, n, **grid))],
        env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if victim.poll() is not None:
            out, err = victim.communicate()
            pytest.fail(f"the writer ended before it could be killed ({victim.returncode}):\n{out}\n{err}")
        assert time.monotonic() < deadline, "the writer never reached the middle of its write"
        time.sleep(0.02)
    started = list(store.glob(".zvf/partitions/*/started.json"))
    pending = [p for p in partition_ids(store).values() if not p["complete"]]
    assert len(pending) == 1, pending
    victim_id = pending[0]["id"]
    assert (store / ".zvf" / "partitions" / victim_id / "started.json") in started
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (store / ".zvf" / "partitions" / victim_id / "manifest.json").exists()
    done, total = map(int, marker.read_text().split("/"))
    assert 0 < done < total, f"not killed in the middle: {done} of {total} chunks written"
    # Evidence on disk: z-chunks 4 and 5 lie wholly inside the victim's slab (only
    # it writes them, in place); chunks 3 and 6 straddle its edges (staged pieces).
    own = [f for f in list_files(store) if f.startswith("0/vertices/c/") and f.split("/")[-1] in ("4", "5")]
    own += list_files(store / ".zvf" / "partitions" / victim_id / "pieces")
    assert own, "the killed writer had written nothing: it was not killed mid-write"

    # Finalisation refuses, naming the incomplete partition, and changes nothing.
    before = tree_digest(store)
    proc = zvf(zvf_cli, "finalise", store)
    assert proc.returncode == EXIT_CONFLICT, describe(proc)
    assert victim_id in proc.stderr, describe(proc)
    with pytest.raises(zv.errors.PartitionConflictError, match=victim_id):
        zv.finalise(str(store))
    after = tree_digest(store)
    assert after == before, f"a refused finalisation modified the store: {diff_trees(before, after)}"
    proc = finalise_script(store)
    assert proc.returncode != 0 and victim_id in proc.stderr, describe(proc)
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(str(store))
    info = json.loads(check(zvf(zvf_cli, "info", store, "--json")).stdout)
    assert info["finalised"] is False
    assert {p["id"]: p["complete"] for p in info["pending_partitions"]}[victim_id] is False

    # Re-run the task: the store equals a clean run.
    write_slabs(store, [1], n, **grid)
    check(finalise_script(store))
    clean = tmp_path / "clean.zarrvectors"
    write_slabs(clean, [0, 1, 2], n, **grid)
    check(finalise_script(clean))

    expected = expected_points()
    assert_same_multiset(read_ours(store), expected, "re-run after SIGKILL")
    # Temporary files a kill can leave behind must be gone too (see also the next test).
    a, b = store_data_digest(store), store_data_digest(clean)
    assert a == b, f"store after kill + re-run differs from a clean run: {diff_trees(b, a)}"
    assert reference.validate(store, level=3)["errors"] == []


def test_rerun_and_finalisation_remove_temporary_files_of_a_killed_writer(tmp_path):
    """A writer killed between creating a cell's temporary file and renaming it
    into place leaves ``<cell>.<pid>-<random>.zvftmp`` (the previous test
    sees this with a real SIGKILL whenever the kill lands inside a cell
    write). Readers ignore such files; after the task is re-run and the
    store finalised, none may be left, so that the store equals a clean run.
    The file is planted here, so that the test does not depend on timing."""
    n, grid = 3, dict(chunk=1000.0)
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, [0, 1, 2], n, **grid)
    cells = sorted(f for f in list_files(store) if f.startswith("0/vertices/c/") and f.endswith("/5"))
    assert cells, "expected cells at z-chunk 5 (inside slab 1)"
    orphan = store / f"{cells[0]}.999999-28003c7c7c52ffc7{TMP_SUFFIX}"
    orphan.write_bytes((store / cells[0]).read_bytes()[:3])

    write_slabs(store, [1], n, **grid)  # the retried task
    check(finalise_script(store))
    left = [f for f in list_files(store) if f.endswith(TMP_SUFFIX)]
    assert not left, f"temporary files of a killed writer survive the re-run and finalisation: {left}"


# --------------------------------------------------------------------------
# (b) a task that ran twice
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 3], ids=["aligned", "unaligned"])
def test_task_that_ran_twice_has_no_duplicates(zv, tmp_path, n):
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, range(n), n)
    write_slabs(store, [1], n)  # Slurm requeue, or a user re-submitting the task
    check(finalise_script(store))
    expected = expected_points()
    got = read_ours(store)
    assert len(got[0]) == TOTAL
    assert_same_multiset(got, expected, "a task re-run before finalisation")

    # And again after finalisation: the finaliser replaces the task's points.
    write_slabs(store, [n - 1], n)
    check(finalise_script(store))
    assert_same_multiset(read_ours(store), expected, "a task re-run after finalisation")


# --------------------------------------------------------------------------
# (c) overlapping ranges
# --------------------------------------------------------------------------

def test_overlap_refused_at_write_time(zv, zvf_cli, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, [0], 4)  # z in [0, 2500)
    before = tree_digest(store)

    # A task of a 2-slab run claims z in [0, 5000).
    proc = run(python_script("write_partition.py", *slab_args(store, 0, 2)))
    assert proc.returncode != 0, describe(proc)
    assert "PartitionConflictError" in proc.stderr, describe(proc)
    assert "z_0_2500" in proc.stderr and "z_0_5000" in proc.stderr, describe(proc)

    # The same through the CLI: exit code 6.
    pos, attrs = expected_points(lo=0.0, hi=5000.0)
    np.save(tmp_path / "p.npy", pos)
    np.save(tmp_path / "i.npy", attrs["intensity"])
    proc = zvf(zvf_cli, "write-partition", store, "--input", tmp_path / "p.npy",
               "--attr-input", f"intensity={tmp_path / 'i.npy'}", "--chunk-shape", "500,500,500",
               "--bin-shape", "125,125,125", "--z-range", "0,5000")
    assert proc.returncode == EXIT_CONFLICT, describe(proc)
    assert "z_0_2500" in proc.stderr, describe(proc)
    after = tree_digest(store)
    assert after == before, f"a refused partition changed the store: {diff_trees(before, after)}"

    # Nothing of the first partition was lost: complete the run and check.
    write_slabs(store, [1, 2, 3], 4)
    check(finalise_script(store))
    assert_same_multiset(read_ours(store), expected_points(), "after a refused overlapping task")


def level0_cells(store):
    return {f for f in list_files(store) if f.startswith("0/") and "/c/" in f}


def test_overlap_in_separately_written_stores_refused_at_finalisation(zv, zvf_cli, reference, tmp_path):
    """The write-time check cannot see a partition in another local store;
    after rsync merges them, finalisation must refuse, naming both. After the
    documented recovery, finalisation removes the cells that only the deleted
    partition wrote, and the store equals a clean run file for file."""
    shared = tmp_path / "shared.zarrvectors"
    a = tmp_path / "nodeA" / "scan.zarrvectors"
    b = tmp_path / "nodeB" / "scan.zarrvectors"
    write_slabs(a, [0], 4)                # z in [0, 2500)
    # A misconfigured task: z in [0, 5000) of a cloud twice as large (other
    # data; x and y up to 20000, in chunks no correct task writes).
    write_slabs(b, [0], 4, seed=99, total_z=20_000.0)
    for local in (a, b):
        check(run(["rsync", "-a", f"{local}/", f"{shared}/"]))
    write_slabs(shared, [2, 3], 4)        # the rest, written directly

    proc = zvf(zvf_cli, "finalise", shared)
    assert proc.returncode == EXIT_CONFLICT, describe(proc)
    assert "z_0_2500" in proc.stderr and "z_0_5000" in proc.stderr, describe(proc)
    proc = finalise_script(shared)
    assert proc.returncode != 0, describe(proc)
    assert "z_0_2500" in proc.stderr and "z_0_5000" in proc.stderr, describe(proc)

    # Nothing was dropped: not readable, both partitions still pending with their counts.
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(str(shared))
    parts = partition_ids(shared)
    assert parts["z_0_2500"]["complete"] and parts["z_0_5000"]["complete"], parts
    assert parts["z_0_2500"]["vertex_count"] == len(expected_points(lo=0.0, hi=2500.0)[0])
    wrong = generated(2, total_points=TOTAL, seed=99, extent=20_000.0, lo=0.0, hi=5000.0)
    assert parts["z_0_5000"]["vertex_count"] == len(wrong[0])

    # Recovery (docs/hpc.md): delete the wrong partition, re-run the slabs its range covered.
    shutil.rmtree(shared / ".zvf" / "partitions" / "z_0_5000")
    write_slabs(shared, [0, 1], 4)
    clean = tmp_path / "clean.zarrvectors"
    write_slabs(clean, range(4), 4)
    check(finalise_script(clean))
    orphans = level0_cells(shared) - level0_cells(clean)
    assert orphans, "the wrong partition left no cells that only it wrote: the test proves nothing"
    proc = check(zvf(zvf_cli, "finalise", shared))
    assert f"removed {len(orphans)} orphan cell files" in proc.stdout, describe(proc)
    assert not level0_cells(shared) & orphans, "cells of the deleted partition survived finalisation"
    check(finalise_script(shared))  # the pyramid and consolidated metadata, as for the clean run
    assert_same_multiset(read_ours(shared), expected_points(), "after recovering from the overlap")
    a_, b_ = store_data_digest(shared), store_data_digest(clean)
    assert a_ == b_, f"the recovered store differs from a clean run: {diff_trees(b_, a_)}"
    assert reference.validate(shared, level=3)["errors"] == []


# --------------------------------------------------------------------------
# (d) a slab that never ran
# --------------------------------------------------------------------------

def test_gap_reported_and_accepted_only_when_asked(zv, zvf_cli, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, [0, 1, 3], 4)  # slab 2, z in [5000, 7500), never ran
    gap = "z in [5000, 7500)"

    proc = zvf(zvf_cli, "finalise", store)
    assert proc.returncode == EXIT_CONFLICT, describe(proc)
    assert gap in proc.stderr, describe(proc)
    proc = finalise_script(store)
    assert proc.returncode != 0 and gap in proc.stderr, describe(proc)
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(str(store))

    copy = tmp_path / "copy.zarrvectors"
    shutil.copytree(store, copy, symlinks=True)

    proc = check(finalise_script(store, "--allow-gaps"))
    assert f"warning: no partition covers {gap}" in proc.stdout, describe(proc)
    proc = check(zvf(zvf_cli, "finalise", copy, "--allow-gaps"))
    assert gap in proc.stderr, describe(proc)

    expected = expected_points()
    z = expected[0][:, 2].astype(np.float64)
    kept = select(expected, (z < 5000.0) | (z >= 7500.0))
    assert_same_multiset(read_ours(store), kept, "finalised with --allow-gaps")
    assert_same_multiset(read_ours(copy), kept, "finalised with zvf finalise --allow-gaps")

    # The missing slab runs later: a second finalisation completes the store.
    write_slabs(store, [2], 4)
    check(finalise_script(store))
    assert_same_multiset(read_ours(store), expected, "after the missing slab ran")


# --------------------------------------------------------------------------
# (e) finalisation twice
# --------------------------------------------------------------------------

def test_finalisation_twice_changes_nothing(zv, zvf_cli, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, range(3), 3)
    check(finalise_script(store))
    before = tree_digest(store)

    check(finalise_script(store))
    after = tree_digest(store)
    assert after == before, f"finalise_store.py a second time: {diff_trees(before, after)}"
    check(zvf(zvf_cli, "finalise", store))
    assert tree_digest(store) == before, f"zvf finalise after: {diff_trees(before, tree_digest(store))}"
    report = zv.finalise(str(store))
    assert report["changed"] is False and list(report["merged"]) == [], report
    assert tree_digest(store) == before
    assert_same_multiset(read_ours(store), expected_points())


def test_finalise_store_uses_build_pyramid_when_available(tmp_path):
    """finalise_store.py calls zarr_vectors.multiresolution.coarsen.build_pyramid
    if the module has it, and says so when it does not."""
    import importlib

    try:
        coarsen = importlib.import_module("zarr_vectors.multiresolution.coarsen")
        available = hasattr(coarsen, "build_pyramid")
    except ImportError:
        available = False
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, range(2), 2, total=4000)
    proc = check(run(python_script("finalise_store.py", "--output", store)))
    assert ("No pyramid built" in proc.stdout) == (not available), describe(proc)
    assert "Store finalised." in proc.stdout
    root = json.loads((store / "zarr.json").read_text())
    assert "consolidated_metadata" in root, "finalise_store.py did not consolidate the metadata last"
    if available:
        assert len(root["attributes"]["multiscales"][0]["datasets"]) > 1, "no pyramid levels were written"


# --------------------------------------------------------------------------
# (f) a pyramid part killed mid-build
# --------------------------------------------------------------------------

PYRAMID = ["--factors", "2,1", "--factors", "2,1"]  # as stall_pyramid.py builds


def level_cells(store, level):
    return {f for f in list_files(store) if f.startswith(f"{level}/") and "/c/" in f}


def test_killed_pyramid_part_refused_then_rerun_equals_clean_run(zv, zvf_cli, reference, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    write_slabs(store, range(2), 2)
    check(finalise_script(store, "--no-pyramid"))
    clean = tmp_path / "clean.zarrvectors"
    shutil.copytree(store, clean)

    # Parts 0 and 2 of 3 finish (the CLI, as in submit_pyramid_part.sh); part 1 is killed.
    for i in (0, 2):
        check(zvf(zvf_cli, "pyramid", store, *PYRAMID, "--part", f"{i}/3"))
    before_kill = level_cells(store, 1) | level_cells(store, 2)
    marker = tmp_path / "stalled"
    victim = subprocess.Popen([sys.executable, str(HERE / "stall_pyramid.py"), str(marker), "8", str(store), "1", "3"],
                              env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if victim.poll() is not None:
            out, err = victim.communicate()
            pytest.fail(f"the pyramid part ended before it could be killed ({victim.returncode}):\n{out}\n{err}")
        assert time.monotonic() < deadline, "the pyramid part never reached the middle of its build"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    written = (level_cells(store, 1) | level_cells(store, 2)) - before_kill
    assert written, "the killed part had written nothing: it was not killed mid-build"
    assert not (store / ".zvf" / "pyramid" / "part-1-of-3.json").exists()
    # A kill inside a cell write leaves the store's temporary file next to the
    # cell; plant one so that publishing is seen to remove it.
    cell = sorted(written)[0]
    (store / f"{cell}.999999-5eed5eed5eed5eed{TMP_SUFFIX}").write_bytes(b"\x01")

    # Publishing refuses, naming the missing part, and changes nothing.
    before = tree_digest(store)
    proc = zvf(zvf_cli, "pyramid", store, *PYRAMID, "--finalise-parts")
    assert proc.returncode == EXIT_CONFLICT, describe(proc)
    assert "parts 1 of 3" in proc.stderr, describe(proc)
    assert tree_digest(store) == before, "a refused publish modified the store"
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(str(store), level=1)

    # Re-run the part, publish: the store equals a clean run, file for file.
    check(zvf(zvf_cli, "pyramid", store, *PYRAMID, "--part", "1/3"))
    check(zvf(zvf_cli, "pyramid", store, *PYRAMID, "--finalise-parts"))
    for i in range(3):
        check(zvf(zvf_cli, "pyramid", clean, *PYRAMID, "--part", f"{i}/3"))
    check(zvf(zvf_cli, "pyramid", clean, *PYRAMID, "--finalise-parts"))
    a, b = tree_digest(store), tree_digest(clean)
    assert a == b, f"pyramid after kill + re-run differs from a clean run: {diff_trees(b, a)}"
    for k in (1, 2):
        assert_same_multiset(reference.read(store, level=k, attrs=[]), (read_ours(store, level=k)[0], {}),
                             f"level {k}: reference read")
    assert reference.validate(store, level=5)["errors"] == []
