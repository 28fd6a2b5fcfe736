"""Fixtures for the zvf test-suite.

Two implementations of the same format are imported as ``zarr_vectors``:

* ours (the zvf engine's Python package), imported in THIS process, and
* the reference implementation, PyPI ``zarr-vectors==0.9.2``, which lives in
  its own virtual environment and is only ever driven through the
  subprocess script ``tests/oracle/ref_oracle.py``.

The reference venv is ``$ZVF_REFERENCE_VENV`` if set, else
``<repo>/.cache/reference-venv``; the ``reference`` fixture creates it (with
``python -m venv`` and ``pip install zarr-vectors==0.9.2``) the first time
it is needed and reuses it afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
ORACLE_SCRIPT = TESTS_DIR / "oracle" / "ref_oracle.py"
REFERENCE_PACKAGE = "zarr-vectors"
REFERENCE_VERSION = "0.9.2"
SEED = 20_250_911

# helpers.py sits next to this file; make it importable whatever import mode
# pytest runs in.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


# --------------------------------------------------------------------------
# Reference virtual environment
# --------------------------------------------------------------------------

def reference_venv_dir() -> Path:
    env = os.environ.get("ZVF_REFERENCE_VENV")
    return Path(env).expanduser() if env else REPO_ROOT / ".cache" / "reference-venv"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _subprocess_env() -> dict[str, str]:
    """Our environment minus anything that could make the reference
    interpreter import a different ``zarr_vectors`` (or vice versa)."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        env.pop(key, None)
    return env


_PROBE = (
    "import importlib.metadata as m, sys, zarr_vectors; "
    f"v = m.version({REFERENCE_PACKAGE!r}); "
    f"sys.exit(0 if v == {REFERENCE_VERSION!r} else 3)"
)


def _reference_ready(python: Path) -> bool:
    if not python.exists():
        return False
    proc = subprocess.run(
        [str(python), "-I", "-c", _PROBE],
        env=_subprocess_env(), capture_output=True, text=True, timeout=300,
    )
    return proc.returncode == 0


@contextlib.contextmanager
def _file_lock(path: Path):
    """Serialise venv creation between concurrent pytest processes."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_reference_venv(venv: Path | None = None) -> Path:
    """Return the python of a venv holding zarr-vectors==0.9.2, creating or
    repairing the venv if needed.  Idempotent; one probe when ready."""
    venv = Path(venv) if venv is not None else reference_venv_dir()
    python = _venv_python(venv)
    if _reference_ready(python):
        return python
    with _file_lock(venv.parent / f".{venv.name}.lock"):
        if _reference_ready(python):  # another process finished meanwhile
            return python
        env = _subprocess_env()
        steps = []
        if not python.exists():
            steps.append([sys.executable, "-m", "venv", str(venv)])
        steps.append([
            str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
            f"{REFERENCE_PACKAGE}=={REFERENCE_VERSION}",
        ])
        for cmd in steps:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"setting up the reference venv at {venv} failed: {' '.join(cmd)}\n"
                    f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
                )
        if not _reference_ready(python):
            raise RuntimeError(
                f"{python} still cannot import zarr_vectors {REFERENCE_VERSION} after installation"
            )
    return python


class OracleError(AssertionError):
    """The reference implementation failed on a store or input."""


class ReferenceOracle:
    """Drives ``tests/oracle/ref_oracle.py`` under the reference venv."""

    def __init__(self, python: Path, workdir: Path):
        self.python = Path(python)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    # -- plumbing ----------------------------------------------------------
    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.python), "-I", str(ORACLE_SCRIPT), *map(str, args)]
        proc = subprocess.run(
            cmd, env=_subprocess_env(), capture_output=True, text=True,
            timeout=600, cwd=str(self.workdir),
        )
        if check and proc.returncode != 0:
            raise OracleError(
                f"reference oracle failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-8000:]}"
            )
        return proc

    def _scratch(self, suffix: str) -> Path:
        return self.workdir / f"{uuid.uuid4().hex}{suffix}"

    @staticmethod
    def _csv(values) -> str:
        return ",".join(repr(float(v)) for v in values)

    # -- API ---------------------------------------------------------------
    def version(self) -> dict:
        return json.loads(self.run("version").stdout)

    def read(self, store, *, level: int = 0, bbox=None, attrs=None):
        """Read with the reference ``read_points``.

        ``attrs=None`` reads every attribute at the level (unlike the
        reference's own default); ``attrs=[]`` reads none.
        Returns ``(positions, {name: array})``.
        """
        out = self._scratch(".npz")
        args = ["read", str(store), str(out), f"--level={int(level)}"]
        if bbox is not None:
            lo, hi = bbox
            args.append(f"--bbox={self._csv(lo)}:{self._csv(hi)}")
        if attrs is not None:
            args.append("--attrs=" + ",".join(attrs))
        self.run(*args)
        try:
            with np.load(out, allow_pickle=False) as data:
                positions = data["positions"]
                attributes = {k[len("attr_"):]: data[k] for k in data.files if k.startswith("attr_")}
        finally:
            out.unlink(missing_ok=True)
        return positions, attributes

    def validate(self, store, level: int = 3) -> dict:
        proc = self.run("validate", str(store), f"--level={int(level)}")
        return json.loads(proc.stdout)

    def write(self, store, positions, *, chunk_shape, bin_shape=None,
              attributes: Mapping[str, np.ndarray] | None = None, compressor=None) -> dict:
        inp = self._scratch(".npz")
        arrays = {"positions": np.asarray(positions)}
        for name, value in (attributes or {}).items():
            arrays[f"attr_{name}"] = np.asarray(value)
        np.savez(inp, **arrays)
        args = ["write", str(inp), str(store), f"--chunk={self._csv(chunk_shape)}"]
        if bin_shape is not None:
            args.append(f"--bin={self._csv(bin_shape)}")
        if compressor is not None:
            text = compressor if isinstance(compressor, str) else json.dumps(compressor)
            args.append(f"--compressor={text}")
        try:
            proc = self.run(*args)
        finally:
            inp.unlink(missing_ok=True)
        return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> ReferenceOracle:
    """Reference-oracle object (zarr-vectors==0.9.2 in its own venv)."""
    try:
        python = ensure_reference_venv()
    except Exception as exc:  # fail, never skip: the oracle is the point
        pytest.fail(f"cannot provide the reference implementation: {exc}", pytrace=False)
    oracle = ReferenceOracle(python, tmp_path_factory.mktemp("oracle"))
    info = oracle.version()
    assert info["version"] == REFERENCE_VERSION, info
    return oracle


# --------------------------------------------------------------------------
# Our package
# --------------------------------------------------------------------------

_OUR_API = {
    "write_points": ("zarr_vectors.types.points", "write_points"),
    "write_points_partition": ("zarr_vectors.types.points", "write_points_partition"),
    "read_points": ("zarr_vectors.types.points", "read_points"),
    "open_store": ("zarr_vectors.core.store", "open_store"),
    "write_multiscale_metadata": ("zarr_vectors.core.multiscale", "write_multiscale_metadata"),
    "finalise": ("zarr_vectors", "finalise"),
    "build_pyramid": ("zarr_vectors.multiresolution.coarsen", "build_pyramid"),
    "errors": ("zarr_vectors.errors", None),
}


class OurPackage:
    """Lazy accessors for our package's public API, so that a missing or
    broken piece fails the tests that use it (never skips them)."""

    def __getattr__(self, name: str) -> Any:
        try:
            module_name, attr = _OUR_API[name]
        except KeyError:
            raise AttributeError(name) from None
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)

    @property
    def package(self) -> ModuleType:
        return importlib.import_module("zarr_vectors")


def _assert_is_our_package(module: ModuleType) -> None:
    origin = Path(module.__file__).resolve()
    ref = reference_venv_dir().resolve()
    assert ref not in origin.parents, (
        f"the test process imported the REFERENCE zarr_vectors from {origin}; "
        f"the reference venv ({ref}) must never be on this interpreter's path"
    )
    leaked = [p for p in sys.path if p and ref in Path(p).resolve().parents]
    assert not leaked, f"reference venv paths leaked into sys.path: {leaked}"
    # The reference has no zarr_vectors.errors module; ours must.
    importlib.import_module("zarr_vectors.errors")


@pytest.fixture(scope="session")
def zv() -> OurPackage:
    """Our package's API (``zv.write_points``, ``zv.errors.ZvfError``, ...)."""
    import zarr_vectors  # ImportError here fails the test: no importorskip.

    _assert_is_our_package(zarr_vectors)
    return OurPackage()


@pytest.fixture(scope="session")
def errors(zv) -> ModuleType:
    """``zarr_vectors.errors`` of our package."""
    return zv.errors


# --------------------------------------------------------------------------
# Paths and randomness
# --------------------------------------------------------------------------

@pytest.fixture
def store_path(tmp_path) -> Path:
    """A not-yet-existing store path ``<tmp>/store.zarrvectors``."""
    return tmp_path / "store.zarrvectors"


@pytest.fixture
def make_store_path(tmp_path):
    """Factory: ``make_store_path("name")`` -> new ``<tmp>/name.zarrvectors``
    (unique, not yet existing)."""
    used: set[str] = set()

    def make(name: str = "store") -> Path:
        stem, i = name, 1
        while stem in used or (tmp_path / f"{stem}.zarrvectors").exists():
            i += 1
            stem = f"{name}-{i}"
        used.add(stem)
        return tmp_path / f"{stem}.zarrvectors"

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    """A random generator with a fixed seed (fresh per test)."""
    return np.random.default_rng(SEED)


@pytest.fixture(scope="session")
def zvf_cli():
    """Path of the zvf executable: $ZVF_CLI, zvf on PATH, or the one `pip install .` put beside python."""
    import shutil
    import sys

    beside = os.path.join(os.path.dirname(sys.executable), "zvf")
    exe = os.environ.get("ZVF_CLI") or shutil.which("zvf") or (beside if os.path.exists(beside) else None)
    if not exe:
        pytest.fail("the zvf executable is not installed (pip install . builds it; or set ZVF_CLI=/path/to/zvf)")
    return exe
