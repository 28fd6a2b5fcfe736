"""The ``zvf`` command-line tool.

The executable is ``$ZVF_CLI`` if set, else ``zvf`` on PATH; the tests skip
(with the reason) when neither exists.
"""

from __future__ import annotations

import os
import shutil
import sys
import subprocess

import numpy as np
import pytest

from helpers import run_cli, assert_same_multiset, make_points, select, slab_mask, tree_digest, diff_trees

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)




def _write_partitions(zv, path, points, edges=(0.0, 312.5, 625.0, 937.5, 1250.0)):
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = select(points, slab_mask(points[0], 0, lo, hi))
        zv.write_points_partition(str(path), part[0], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=part[1], x_range=(lo, hi))


def test_cli_finalise_partitioned_store(zv, zvf_cli, rng, store_path):
    points = make_points(rng, 3000, (0.0, 0.0, 0.0), (1250.0, 1000.0, 1000.0))
    _write_partitions(zv, store_path, points)
    proc = run_cli(zvf_cli, "finalise", store_path)
    assert proc.returncode == 0, f"zvf finalise failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    result = zv.read_points(str(store_path))
    got = (np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()})
    assert_same_multiset(got, points, "store finalised by the CLI")

    # Running it again succeeds and changes nothing.
    before = tree_digest(store_path)
    again = run_cli(zvf_cli, "finalise", store_path)
    assert again.returncode == 0, again.stderr
    after = tree_digest(store_path)
    assert after == before, f"a second `zvf finalise` modified the store: {diff_trees(before, after)}"


def test_cli_finalise_missing_path(zvf_cli, tmp_path):
    missing = tmp_path / "absent.zarrvectors"
    proc = run_cli(zvf_cli, "finalise", missing)
    assert proc.returncode != 0
    assert proc.stderr.strip(), "no error message on stderr"
    assert "absent.zarrvectors" in proc.stderr, f"stderr does not name the path: {proc.stderr!r}"
    assert "Traceback" not in proc.stderr, f"the CLI crashed instead of reporting: {proc.stderr}"
    assert not missing.exists(), "zvf finalise created the missing store"


def test_cli_finalise_without_path_is_a_usage_error(zvf_cli):
    proc = run_cli(zvf_cli, "finalise")
    assert proc.returncode != 0
    assert proc.stderr.strip()


@pytest.mark.parametrize("compressor,names", [
    ("gzip", ["gzip"]),
    ('[{"name": "zstd", "configuration": {"level": 3}}, {"name": "crc32c"}]', ["zstd", "crc32c"]),
])
def test_cli_write_with_gzip_or_a_codec_list(zv, zvf_cli, rng, tmp_path, compressor, names):
    import json

    points = make_points(rng, 2000, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    np.save(tmp_path / "p.npy", points[0])
    store = tmp_path / "s.zarrvectors"
    proc = run_cli(zvf_cli, "write", store, "--input", tmp_path / "p.npy", "--chunk-shape", "250,250,250",
                   "--bin-shape", "125,125,125", "--compressor", compressor)
    assert proc.returncode == 0, proc.stderr
    codecs = json.loads((store / "0" / "vertices" / "zarr.json").read_text())["codecs"]
    assert [c["name"] for c in codecs] == ["vlen-bytes", *names], codecs
    assert_same_multiset((np.asarray(zv.read_points(str(store))["positions"]), {}), (points[0], {}), "zvf write")
    info = run_cli(zvf_cli, "info", store, "--json")
    assert info.returncode == 0, info.stderr
    # info names the codecs so that they can be passed back to --compressor.
    back = json.loads(info.stdout)["codec"]
    again = run_cli(zvf_cli, "write", tmp_path / "again.zarrvectors", "--input", tmp_path / "p.npy",
                    "--chunk-shape", "250,250,250", "--bin-shape", "125,125,125", "--compressor", back)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.zarrvectors" / "0" / "vertices" / "zarr.json").read_text())["codecs"] == codecs


@pytest.mark.parametrize("compressor,words", [
    ("lz4", "unknown compressor 'lz4'"),
    ('[{"name": "zstd", "configuration": {"level": 99}}]', "zstd level 99"),
    ('[{"name": "zstd"', "not valid JSON"),
    ('[{"name": "crc32c"}, {"name": "gzip"}]', "after 'crc32c'"),
])
def test_cli_bad_compressor_is_a_usage_error(zvf_cli, tmp_path, compressor, words):
    np.save(tmp_path / "p.npy", np.zeros((10, 3), dtype=np.float32))
    store = tmp_path / "s.zarrvectors"
    proc = run_cli(zvf_cli, "write", store, "--input", tmp_path / "p.npy", "--chunk-shape", "250,250,250",
                   "--compressor", compressor)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "--compressor" in proc.stderr and words in proc.stderr, proc.stderr
    assert not store.exists()
