"""Environment variables of the engine.

ZVF_TRACE=1 prints the phases of a write to stderr; without it, a write prints nothing.
ZVF_BUFFER_CACHE_MB that is not a whole number is named in a warning, and the write goes on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
from zarr_vectors.types.points import write_points
pos = np.random.default_rng(0).uniform(0, 100, size=(20_000, 3)).astype(np.float32)
write_points(sys.argv[1], pos, chunk_shape=(50, 50, 50), bin_shape=(25, 25, 25), compressor="zstd")
"""

LINE = re.compile(r"^zvf trace: (\S+) (\S+) (\d+\.\d) ms$")


def run(tmp_path, name: str, trace: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ZVF_TRACE"}
    if trace is not None:
        env["ZVF_TRACE"] = trace
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / name)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_trace_names_each_phase_of_a_write(tmp_path):
    proc = run(tmp_path, "traced.zarrvectors", "1")
    phases = [(m[1], m[2]) for m in map(LINE.match, proc.stderr.splitlines()) if m]
    assert phases == [("write_points", "validate"), ("sort", "keys"), ("sort", "scatter"),
                      ("write_points", "sort"), ("write_points", "cells"), ("write_points", "metadata")], proc.stderr
    assert proc.stdout == ""


def test_no_trace_by_default_or_when_zero(tmp_path):
    assert "zvf trace" not in run(tmp_path, "plain.zarrvectors", None).stderr
    assert "zvf trace" not in run(tmp_path, "zero.zarrvectors", "0").stderr


def test_trace_of_a_partition_from_the_cli(zvf_cli, tmp_path):
    import numpy as np

    np.save(tmp_path / "slab.npy", np.random.default_rng(1).uniform(0, 100, size=(5_000, 3)).astype(np.float32))
    env = dict(os.environ, ZVF_TRACE="1")
    proc = subprocess.run([zvf_cli, "write-partition", str(tmp_path / "s.zarrvectors"), "--input",
                           str(tmp_path / "slab.npy"), "--chunk-shape", "50,50,50", "--z-range", "0,100"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    phases = [m[2] for m in map(LINE.match, proc.stderr.splitlines()) if m and m[1] == "write_points_partition"]
    assert phases == ["validate", "sort", "cells", "manifest"], proc.stderr


BIG = """
import sys
import numpy as np
from zarr_vectors.types.points import write_points
pos = np.random.default_rng(0).uniform(0, 100, size=(1_000_000, 3)).astype(np.float32)  # 12 MB: large blocks
print(write_points(sys.argv[1], pos, chunk_shape=(50, 50, 50))["vertex_count"])
"""


def test_bad_buffer_cache_size_is_named_and_the_write_goes_on(tmp_path):
    for value, warned in (("abc", True), ("-5", True), ("64", False), ("0", False)):
        env = dict(os.environ, ZVF_BUFFER_CACHE_MB=value)
        proc = subprocess.run([sys.executable, "-c", BIG, str(tmp_path / f"s{value}.zarrvectors")], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "1000000"
        assert (f"ZVF_BUFFER_CACHE_MB='{value}' is not a whole number of MiB" in proc.stderr) == warned, proc.stderr
