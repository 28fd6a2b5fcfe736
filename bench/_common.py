"""Plumbing shared by the benchmarks: timing, summaries, the reference side, peak RSS, machine facts.

Every benchmark module (bench_*.py) exposes ``run(cfg, ctx) -> dict``; the
dict holds ``params``, ``measurements`` (name -> :func:`measurement`) and
``derived`` (ratios and fits). run_all.py collects them into one JSON file.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _fs import retire  # noqa: E402


# ---- timing and summaries ---------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def quantile(samples: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default method), without numpy."""
    s = sorted(samples)
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def measurement(samples: list[float], unit: str = "s", **extra: Any) -> dict[str, Any]:
    """One measured quantity: every sample plus median, min, max and p90."""
    if not samples:
        raise ValueError("a measurement needs at least one sample")
    return {"unit": unit, "median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "p90": quantile(samples, 0.9), "n": len(samples), "samples": list(samples), **extra}


def sig(x: float, digits: int = 3) -> str:
    """x with `digits` significant digits, without exponent for everyday magnitudes: 0.0123, 45.6, 1234."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def speedup(ours_s: float, other_s: float) -> str:
    """'ours is 3.1x faster' or 'ours is 1.8x slower', from two times."""
    r = other_s / ours_s
    return f"ours is {r:.1f}x faster" if r >= 1 else f"ours is {1 / r:.1f}x slower"


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares y = a + b*x; returns (a, b)."""
    if len(xs) < 2 or len(set(xs)) < 2:
        raise ValueError(f"a line fit needs two distinct x values, got {xs}")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def remove(path: str) -> None:
    """Clear a benchmark output between repeats, if present: retired, see _fs.py."""
    retire(path)


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


# ---- the reference side ------------------------------------------------------------


class ReferenceSide:
    """zarr-vectors 0.9.2 in its own venv, as one long-lived process (ref_side.py).

    Importing the reference takes seconds, so every benchmark shares one
    process and sends it requests; each request is timed inside that process,
    imports excluded.
    """

    def __init__(self, python: str):
        if not os.path.exists(python):
            raise SystemExit(f"reference python {python!r} does not exist; pass --ref-python or --no-reference "
                             "(the reference venv holds zarr-vectors==0.9.2)")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self.python = python
        self.proc = subprocess.Popen([python, "-I", os.path.join(HERE, "ref_side.py"), "serve"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.version = self.call("version")["zarr_vectors"]

    def call(self, op: str, **args: Any) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the reference side ({self.python}) exited during {op!r}; see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise SystemExit(f"the reference side failed on {op!r}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=60)


# ---- peak memory of a child ------------------------------------------------------------

# Linux carries a process's peak RSS over fork and exec into ru_maxrss, so a
# child forked from this (large) process would report at least our own peak.
# The measured child is therefore started by a small launcher process.
LAUNCH = ("import subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
          "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); sys.exit(p.returncode)")


def run_small_child(script: str, *args: str) -> str:
    """Run `python -c script args` through the launcher; return its stdout."""
    proc = subprocess.run([sys.executable, "-c", LAUNCH, sys.executable, "-c", script, *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({' '.join(args)[:200]}):\n{proc.stderr[-4000:]}")
    return proc.stdout


# ---- machine facts ------------------------------------------------------------------


def _first_line_with(path: str, key: str, sep: str = ":") -> str | None:
    """The value of the first `key<sep>value` line of a file like /proc/cpuinfo."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key) and sep in line:
                    return line.split(sep, 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


def filesystem_of(path: str) -> dict[str, str]:
    """Mount point, filesystem type and device holding path (longest /proc/mounts prefix)."""
    real = os.path.realpath(path)
    best = {"mount": "?", "type": "?", "device": "?"}
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best["mount"].strip("?")):
                    best = {"mount": mnt, "type": fstype, "device": dev}
    except OSError:
        pass
    return best


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(bench_dir: str) -> dict[str, Any]:
    mem_kib = _first_line_with("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "cores": os.cpu_count(),
        "ram_gib": round(int(mem_kib.split()[0]) / 2**20, 1) if mem_kib else None,
        "kernel": platform.release(),
        "os": _first_line_with("/etc/os-release", "PRETTY_NAME", "=") or platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "bench_dir_filesystem": filesystem_of(bench_dir),
        "load_average_at_start": list(os.getloadavg()),
    }


def versions(reference: ReferenceSide | None) -> dict[str, Any]:
    import numpy
    import zarr_vectors

    out: dict[str, Any] = {
        "numpy": numpy.__version__,
        "zarr": package_version("zarr"),
        "zarr_vectors_ours": zarr_vectors.__version__,
        "zarr_vectors_reference": reference.version if reference else None,
        "zstandard": package_version("zstandard"),
        "matplotlib": package_version("matplotlib"),
        "mpi4py": package_version("mpi4py"),
        "git_commit": git_commit(),
    }
    return out


@dataclass
class Context:
    """What every benchmark gets: where to work, how often, and the reference side."""

    workdir: str
    repeat: int
    reference: ReferenceSide | None
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))
