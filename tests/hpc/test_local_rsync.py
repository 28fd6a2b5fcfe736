"""Local NVMe then rsync: each job writes a store of its own on local disk,
the stores are merged into one shared store with `rsync -a`, then finalised.

examples/hpc/local_nvme_then_rsync.sh runs here as four concurrent "array
tasks" (bash with the Slurm variables set; test_slurm.py runs it under Slurm),
each with its own node-local directory.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from helpers import assert_same_multiset, list_files

from .hpcutil import EXAMPLES, check, describe, generated, job_env, python_script, read_ours, run

TOTAL = 20_000


@pytest.mark.parametrize("n_slabs", [4, 3], ids=["aligned", "unaligned"])
def test_local_stores_merged_with_rsync_equal_direct_write(zv, tmp_path, n_slabs):
    assert shutil.which("rsync"), "rsync is not installed (scripts/deps/hpc.apt)"
    shared = tmp_path / "lustre" / "scan.zarrvectors"
    procs = []
    for i in range(n_slabs):
        local = tmp_path / f"node{i}"
        local.mkdir()
        env = job_env(OUTPUT=shared, N_SLABS=n_slabs, TOTAL_POINTS=TOTAL, SEED=31, LOCAL_SCRATCH=local,
                      SLURM_ARRAY_TASK_ID=i, SLURM_JOB_ID=9000 + i, CHUNK_SIZE=1250, BIN_SIZE=625)
        procs.append(subprocess.Popen(["bash", str(EXAMPLES / "local_nvme_then_rsync.sh")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"task {i} failed ({p.returncode}):\n{out}\n{err}"
        assert f"Slab {i} done" in out
        assert list_files(tmp_path / f"node{i}") == [], "the local store was not removed"

    assert not (shared / "zarr.json").exists(), "rsync'd partitions must not be a store before finalisation"
    check(run(python_script("finalise_store.py", "--output", shared)))

    expected = generated(2, total_points=TOTAL, seed=31)
    direct = tmp_path / "direct.zarrvectors"
    zv.write_points(str(direct), expected[0], chunk_shape=(1250.0,) * 3, bin_shape=(625.0,) * 3,
                    attributes=expected[1])
    merged = read_ours(shared)
    assert_same_multiset(merged, read_ours(direct), "merged local stores vs direct write_points")
    assert_same_multiset(merged, expected, "merged local stores vs generated points")
    # Same chunks present as in the direct write.
    chunks = lambda p: sorted(f for f in list_files(p) if f.startswith("0/vertices/c/"))  # noqa: E731
    assert chunks(shared) == chunks(direct)


def test_rsync_of_unfinished_local_store_is_refused(tmp_path):
    """A local store copied while its writer was still running (no manifest)
    is an incomplete partition in the shared store: finalisation refuses."""
    local = tmp_path / "node0" / "scan.zarrvectors"
    shared = tmp_path / "shared.zarrvectors"
    check(run(python_script("write_partition.py", "--slab-index", 0, "--n-slabs", 2, "--output", local,
                            "--total-points", 2000)))
    manifest = local / ".zvf" / "partitions" / "z_0_5000" / "manifest.json"
    assert manifest.exists(), list_files(local)
    manifest.unlink()  # as if rsync ran before the writer finished
    check(run(["rsync", "-a", f"{local}/", f"{shared}/"]))
    proc = run(python_script("finalise_store.py", "--output", shared))
    assert proc.returncode != 0, describe(proc)
    assert "z_0_5000" in proc.stderr and "did not finish" in proc.stderr, describe(proc)
