"""Helpers shared by the HPC tests: paths, subprocess environments, expected data."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "hpc"
DOCS = REPO_ROOT / "docs" / "hpc.md"
VENV_BIN = Path(sys.executable).parent


def job_env(**extra: str) -> dict[str, str]:
    """The environment of a job: ours, with this interpreter's bin directory
    (python, zvf) first on PATH, as an activated virtual environment has it."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, *, env=None, cwd=None, timeout=300, input=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], env=env or job_env(), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, input=input)


def describe(proc: subprocess.CompletedProcess) -> str:
    cmd = " ".join(map(str, proc.args)) if isinstance(proc.args, (list, tuple)) else str(proc.args)
    return f"$ {cmd}\nexit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, describe(proc)
    return proc


def python_script(name: str, *args) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), *map(str, args)]


def zvf_exe() -> str:
    beside = VENV_BIN / "zvf"
    exe = os.environ.get("ZVF_CLI") or (str(beside) if beside.exists() else shutil.which("zvf"))
    if not exe:
        raise AssertionError("the zvf executable is not installed (pip install . builds it; or set ZVF_CLI)")
    return exe


@lru_cache(maxsize=None)
def example_module(name: str):
    """Import examples/hpc/<name>.py as a module (its directory on sys.path,
    as when the script runs)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"zvf_examples_hpc_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated(axis: int, *, total_points: int, seed: int, extent: float = 10_000.0, lo=-np.inf, hi=np.inf):
    """The synthetic points the examples write: (positions, {"intensity": ...})."""
    scan = example_module("synthetic_scan")
    positions, intensity = scan.load_range(axis, lo, hi, total_points=total_points, seed=seed, extent=extent)
    return positions, {"intensity": intensity}


def read_ours(path, **kwargs):
    from zarr_vectors.types.points import read_points

    result = read_points(str(path), **kwargs)
    return np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()}


def store_data_digest(path: Path) -> dict[str, str]:
    """Digest of a store's files except the root zarr.json, whose ledger holds
    run ids that differ from run to run."""
    from helpers import tree_digest

    return {k: v for k, v in tree_digest(path).items() if k != "zarr.json"}
