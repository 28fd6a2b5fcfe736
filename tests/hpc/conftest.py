"""Fixtures of the HPC tests: a private one-node Slurm cluster, mpirun, the zvf CLI.

The cluster is started once per session (as root, from Debian's slurm-wlm and
munge) and torn down at the end. When it cannot start, the tests that need it
fail with the reason, unless ZVF_SKIP_SLURM=1 is set, which skips them.
"""

from __future__ import annotations

import os
import shutil

import pytest

from .hpcutil import zvf_exe
from .slurm_cluster import SlurmCluster, SlurmError


@pytest.fixture(scope="session")
def slurm():
    if os.environ.get("ZVF_SKIP_SLURM") == "1":
        pytest.skip("ZVF_SKIP_SLURM=1: the tests that need a Slurm cluster are switched off")
    try:
        cluster = SlurmCluster.start()
    except SlurmError as err:
        pytest.fail(f"cannot start the one-node Slurm test cluster: {err}\n"
                    "(set ZVF_SKIP_SLURM=1 to skip the Slurm tests on a machine without Slurm)",
                    pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def mpirun() -> list[str]:
    """The mpirun prefix for 4 ranks on this machine (2 cores, maybe root)."""
    exe = shutil.which("mpirun")
    if exe is None:
        pytest.fail("mpirun is not installed (Debian package openmpi-bin; scripts/bootstrap.sh installs it)",
                    pytrace=False)
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.fail("mpi4py is not installed in this environment (scripts/deps/hpc.pip)", pytrace=False)
    return [exe, "-n", "4", "--oversubscribe", "--allow-run-as-root"]


@pytest.fixture(scope="session")
def zvf_cli() -> str:
    try:
        return zvf_exe()
    except AssertionError as err:
        pytest.fail(str(err), pytrace=False)
