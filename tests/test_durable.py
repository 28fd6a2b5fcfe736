"""Durable writes (``durable=True``, ``--durable``): the same store, flushed first.

The order of the flush (cells, then the metadata or manifest that publishes
them) is checked in C++ (``Durable.*`` in cpp/tests/test_engine.cpp) and under
strace (tests/test_write_syscalls.py); here the Python and CLI entry points.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from helpers import assert_same_multiset, make_points, select, slab_mask, tree_digest

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)


@pytest.mark.parametrize("step", ["write_points", "build_pyramid"])
def test_durable_gives_the_same_files(zv, rng, tmp_path, step):
    """The same store, byte for byte, with and without durable=True on the step."""
    positions, attributes = make_points(rng, 5000, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    stores = []
    for name, durable in (("plain", False), ("durable", True)):
        path = tmp_path / name / "s.zarrvectors"
        path.parent.mkdir()
        summary = zv.write_points(str(path), positions, chunk_shape=CHUNK, bin_shape=BIN, attributes=attributes,
                                  durable=durable and step == "write_points")
        assert summary["vertex_count"] == len(positions)
        if step == "build_pyramid":
            assert zv.build_pyramid(str(path), [(2.0, 1.0)], durable=durable)["changed"] is True
        stores.append(tree_digest(path))
    assert stores[0] == stores[1]
    assert step != "build_pyramid" or any(key.startswith("1/") for key in stores[0])


def test_durable_partitions_and_finalise_round_trip(zv, rng, store_path):
    points = make_points(rng, 4000, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    for lo, hi in ((0.0, 312.5), (312.5, 1000.0)):  # 312.5 cuts chunks: pieces are staged
        part = select(points, slab_mask(points[0], 0, lo, hi))
        zv.write_points_partition(str(store_path), part[0], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=part[1], x_range=(lo, hi), durable=True)
    result = zv.finalise(str(store_path), durable=True)
    assert result["changed"] is True and result["vertex_count"] == len(points[0])
    got = zv.read_points(str(store_path))
    assert_same_multiset((np.asarray(got["positions"]), {k: np.asarray(v) for k, v in got["attributes"].items()}),
                         points, "durable partitioned store")


@pytest.mark.parametrize("call", ["write_points", "write_points_partition", "finalise", "build_pyramid"])
def test_durable_must_be_a_bool(zv, rng, store_path, call):
    positions, _ = make_points(rng, 10, (0.0, 0.0, 0.0), (10.0, 10.0, 10.0))
    with pytest.raises(zv.errors.InvalidInputError, match=r"durable must be True or False, got 'yes'"):
        if call == "write_points":
            zv.write_points(str(store_path), positions, chunk_shape=(5.0, 5.0, 5.0), durable="yes")
        elif call == "write_points_partition":
            zv.write_points_partition(str(store_path), positions, chunk_shape=(5.0, 5.0, 5.0),
                                      x_range=(0.0, 10.0), durable="yes")
        elif call == "finalise":
            zv.finalise(str(store_path), durable="yes")
        else:
            zv.build_pyramid(str(store_path), [(2.0, 1.0)], durable="yes")
    assert not store_path.exists(), "a refused call left files behind"


def test_cli_durable_write_partition_and_finalise(zvf_cli, rng, tmp_path):
    positions, _ = make_points(rng, 2000, (0.0, 0.0, 0.0), (100.0, 100.0, 100.0))
    np.save(tmp_path / "slab.npy", positions)
    store = tmp_path / "s.zarrvectors"
    for sub in ("write", "write-partition", "finalise", "pyramid"):
        help_text = subprocess.run([zvf_cli, sub, "--help"], capture_output=True, text=True, check=True).stdout
        assert "--durable" in help_text and "stable storage" in help_text
    run = [zvf_cli, "write-partition", str(store), "--input", str(tmp_path / "slab.npy"),
           "--chunk-shape", "50,50,50", "--z-range", "0,100", "--durable"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([zvf_cli, "finalise", str(store), "--durable"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "2000 vertices" in proc.stdout
