"""The guide's Slurm pattern on a real (one-node) Slurm cluster.

A job array writes one z-slab per task (examples/hpc/submit_array.sh running
write_partition.py); a job with --dependency=afterok:<array> finalises
(submit_finalise.sh running finalise_store.py). The finished store must hold
exactly the generated points, and the reference implementation must read the
same points and validate the store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from helpers import assert_same_multiset

from .hpcutil import EXAMPLES, check, describe, generated, job_env, python_script, read_ours, run, zvf_exe

TOTAL = 20_000
# Few chunks (4 x 4 x 4): the reference implementation validates and reads
# chunk by chunk in Python, and the tests must stay fast.
SMALL_GRID = dict(CHUNK_SIZE=2500, BIN_SIZE=625)


def _outputs(logs: Path, pattern: str) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted(logs.glob(pattern)))


def _assert_all_completed(states: dict[str, str], logs: Path) -> None:
    bad = {k: v for k, v in states.items() if v.split()[0] != "COMPLETED"}
    assert not bad, f"jobs did not complete: {bad}\n{_outputs(logs, '*.out')}"


def _check_store(store: Path, expected, reference) -> None:
    assert_same_multiset(read_ours(store), expected, "store written by the Slurm jobs")
    report = reference.validate(store, level=3)
    assert report["errors"] == [], f"reference validator (level 3): {report['errors']}"
    assert_same_multiset(reference.read(store), expected, "reference read of the Slurm-written store")


def test_job_array_then_dependent_finalisation(slurm, reference, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = job_env(OUTPUT=store, N_SLABS=4, TOTAL_POINTS=TOTAL, SEED=11, **SMALL_GRID)

    array = slurm.sbatch("--array=0-3", f"--output={logs}/write_%A_%a.out", "submit_array.sh",
                         env=env, cwd=EXAMPLES)
    final = slurm.sbatch(f"--dependency=afterok:{array}", f"--output={logs}/finalise_%j.out",
                         "submit_finalise.sh", env=env, cwd=EXAMPLES)
    states = slurm.wait(array, final)
    _assert_all_completed(states, logs)
    assert len(states) == 5, states

    written = 0
    for i in range(4):
        text = (logs / f"write_{array}_{i}.out").read_text()
        m = re.search(rf"Slab {i} done: (\d+) vertices", text)
        assert m, f"task {i} did not report its slab:\n{text}"
        written += int(m.group(1))
    assert written == TOTAL
    assert "Store finalised." in (logs / f"finalise_{final}.out").read_text()

    # The finalisation job ran after the last array task: it saw all 4 partitions.
    expected = generated(2, total_points=TOTAL, seed=11)
    _check_store(store, expected, reference)
    assert not (store / ".zvf").exists(), "finalisation left partition files behind"


def test_failed_array_task_blocks_finalisation(slurm, tmp_path):
    """afterok: a failed task means the finalisation job never runs."""
    store = tmp_path / "scan.zarrvectors"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = job_env(OUTPUT=store, N_SLABS=1, TOTAL_POINTS=1000)  # task 1 of 0-1 is out of range: fails

    array = slurm.sbatch("--array=0-1", f"--output={logs}/write_%A_%a.out", "submit_array.sh",
                         env=env, cwd=EXAMPLES)
    final = slurm.sbatch(f"--dependency=afterok:{array}", f"--output={logs}/finalise_%j.out",
                         "submit_finalise.sh", env=env, cwd=EXAMPLES)
    states = slurm.wait(array, final)
    assert states[f"{array}_0"] == "COMPLETED", states
    assert states[f"{array}_1"] == "FAILED", f"{states}\n{_outputs(logs, '*.out')}"
    assert states[final] == "CANCELLED", states  # DependencyNeverSatisfied
    assert not (logs / f"finalise_{final}.out").exists(), "the finalisation job ran"
    assert not (store / "zarr.json").exists(), "the store was finalised although a task failed"


def test_local_disk_array_with_rsync(slurm, reference, tmp_path):
    """local_nvme_then_rsync.sh as a real job array, slabs not aligned with chunks."""
    store = tmp_path / "shared" / "scan.zarrvectors"
    logs = tmp_path / "logs"
    logs.mkdir()
    scratch = tmp_path / "node-local"
    scratch.mkdir()
    env = job_env(OUTPUT=store, N_SLABS=3, TOTAL_POINTS=TOTAL, SEED=12, LOCAL_SCRATCH=scratch, **SMALL_GRID)

    array = slurm.sbatch("--array=0-2", f"--output={logs}/local_%A_%a.out", "local_nvme_then_rsync.sh",
                         env=env, cwd=EXAMPLES)
    final = slurm.sbatch(f"--dependency=afterok:{array}", f"--output={logs}/finalise_%j.out",
                         "submit_finalise.sh", env=env, cwd=EXAMPLES)
    _assert_all_completed(slurm.wait(array, final), logs)
    assert list(scratch.iterdir()) == [], "the local stores were not removed"
    _check_store(store, generated(2, total_points=TOTAL, seed=12), reference)


def test_cli_job_array(slurm, tmp_path):
    """A Python-free job array (submit_array_cli.sh) and `zvf finalise` via --wrap."""
    expected = generated(2, total_points=8000, seed=13)
    inputs = tmp_path / "slabs"
    inputs.mkdir()
    positions, attrs = expected
    z = positions[:, 2].astype(np.float64)
    for i in range(4):
        keep = (z >= i * 2500) & (z < (i + 1) * 2500)
        np.save(inputs / f"slab_{i}.npy", positions[keep])
        np.save(inputs / f"slab_{i}_intensity.npy", attrs["intensity"][keep])
    store = tmp_path / "scan.zarrvectors"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = job_env(OUTPUT=store, INPUT_DIR=inputs, SLAB_DZ=2500, CHUNK="2500,2500,2500", BIN="625,625,625")

    array = slurm.sbatch("--array=0-3", f"--output={logs}/cli_%A_%a.out", "submit_array_cli.sh",
                         env=env, cwd=EXAMPLES)
    final = slurm.sbatch(f"--dependency=afterok:{array}", f"--output={logs}/finalise_%j.out",
                         "--cpus-per-task=1", "--mem=1G", "--wrap", f"{zvf_exe()} finalise {store}",
                         env=env, cwd=tmp_path)
    _assert_all_completed(slurm.wait(array, final), logs)
    assert_same_multiset(read_ours(store), expected, "store written by zvf in Slurm jobs")


def test_pipeline_with_pyramid_job_array(slurm, reference, tmp_path):
    """submit_pipeline.sh: write array -> finalise -> pyramid array -> publish,
    each job afterok on the one before. The levels must equal a pyramid built
    in one process, and the reference must read every level and validate."""
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    store = tmp_path / "scan.zarrvectors"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = slurm.env(job_env(OUTPUT=store, N_SLABS=2, N_PARTS=3, FACTORS="2,1 2,1", TOTAL_POINTS=TOTAL,
                            SEED=14, ZVF_EXAMPLES=EXAMPLES, **SMALL_GRID))
    proc = check(run(["bash", EXAMPLES / "submit_pipeline.sh"], env=env, cwd=logs))
    jobs = dict(re.findall(r"(\w+)=(\d+)", proc.stdout))
    assert list(jobs) == ["write", "finalise", "pyramid_parts", "publish"], describe(proc)
    slurm.job_ids.extend(jobs.values())
    states = slurm.wait(*jobs.values(), timeout=300)
    _assert_all_completed(states, logs)
    assert len(states) == 2 + 1 + 3 + 1, states

    parts = jobs["pyramid_parts"]
    for i in range(3):
        text = (logs / f"zvf_pyramid_{parts}_{i}.out").read_text()
        assert f"part {i}/3 done" in text, text
    published = (logs / f"zvf_pyramid_publish_{jobs['publish']}.out").read_text()
    assert re.search(r"level 2: \d+ vertices", published), published

    # One process, same data and settings: write the cloud as one slab, finalise, build.
    one = tmp_path / "one.zarrvectors"
    check(run(python_script("write_partition.py", "--slab-index", 0, "--n-slabs", 1, "--output", one,
                            "--chunk-size", SMALL_GRID["CHUNK_SIZE"], "--bin-size", SMALL_GRID["BIN_SIZE"],
                            "--total-points", TOTAL, "--seed", 14)))
    check(run(python_script("finalise_store.py", "--output", one, "--no-pyramid")))
    build_pyramid(str(one), [(2.0, 1.0), (2.0, 1.0)])

    expected = generated(2, total_points=TOTAL, seed=14)
    assert_same_multiset(read_ours(store), expected, "level 0 written by the Slurm jobs")
    for k in (0, 1, 2):
        ours = read_ours(store, level=k)
        assert_same_multiset(ours, read_ours(one, level=k), f"level {k}: job arrays vs one process")
        assert_same_multiset(reference.read(store, level=k), ours, f"level {k}: reference read")
    report = reference.validate(store, level=5)
    assert report["errors"] == [], f"reference validator (level 5): {report['errors']}"
    passed = "\n".join(report["passed"])
    assert all(f"resolution_{k}" in passed for k in (1, 2)), passed
    # finalise_store.py consolidated the metadata; publishing refreshed it.
    consolidated = json.loads((store / "zarr.json").read_text())["consolidated_metadata"]["metadata"]
    assert {"1/vertices", "2/vertices"} <= set(consolidated), sorted(consolidated)
