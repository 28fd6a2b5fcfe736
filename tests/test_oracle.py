"""Self-tests of the reference-oracle harness (they need only the reference
venv, not our package): if these fail, interop failures mean nothing."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_same_multiset, bbox_mask, make_attributes, select, uniform_points


@pytest.mark.parametrize("compressor", [None, "zstd"])
def test_reference_round_trip_through_oracle(reference, rng, store_path, compressor):
    positions = uniform_points(rng, 1500, (-400.0, -400.0, -400.0), (600.0, 600.0, 600.0))
    attributes = make_attributes(rng, len(positions))
    attributes["weight"] = rng.standard_normal(len(positions))
    attributes["label"] = rng.integers(-5, 5, size=len(positions), dtype=np.int32)
    summary = reference.write(store_path, positions, chunk_shape=(250.0,) * 3, bin_shape=(125.0,) * 3,
                              attributes=attributes, compressor=compressor)
    assert summary["vertex_count"] == len(positions)
    assert_same_multiset(reference.read(store_path), (positions, attributes), "reference round trip")

    pos, attrs = reference.read(store_path, attrs=[])
    assert attrs == {}
    assert_same_multiset((pos, {}), (positions, {}), "reference round trip without attributes")

    lo, hi = (-100.0, -200.0, 0.0), (300.0, 250.0, 500.0)
    expected = select((positions, attributes), bbox_mask(positions, lo, hi))
    assert_same_multiset(reference.read(store_path, bbox=(lo, hi)), expected, "reference bbox")

    report = reference.validate(store_path)
    assert report["errors"] == [] and report["passed"]


def test_oracle_validate_reports_a_broken_store(reference, rng, store_path):
    positions = uniform_points(rng, 200, (0.0, 0.0, 0.0), (500.0, 500.0, 500.0))
    reference.write(store_path, positions, chunk_shape=(250.0,) * 3)
    # Remove every vertices cell: the level's vertex_count no longer matches.
    cells = [p for p in (store_path / "0" / "vertices" / "c").rglob("*") if p.is_file()]
    assert cells
    for p in cells:
        p.unlink()
    report = reference.validate(store_path)
    assert report["errors"], report

    missing = reference.validate(store_path.parent / "nothing-here.zarrvectors")
    assert missing["errors"], missing


def test_oracle_read_failure_raises(reference, tmp_path):
    from conftest import OracleError

    with pytest.raises(OracleError, match="reference oracle failed"):
        reference.read(tmp_path / "missing.zarrvectors")
