"""Interop on S3 with the reference zarr-vectors 0.9.2 (its own venv, reaching
the bucket through fsspec/s3fs): it reads and validates what we write to the
bucket, and we read what it writes there."""

from __future__ import annotations

import subprocess

import pytest

from helpers import assert_same_multiset, bbox_mask

from .s3util import cloud

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)


@pytest.fixture
def s3_reference(reference, monkeypatch):
    """The reference oracle, with s3fs installed in its venv (once)."""
    probe = subprocess.run([str(reference.python), "-c", "import s3fs"], capture_output=True)
    if probe.returncode != 0:
        proc = subprocess.run(
            [str(reference.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "s3fs"],
            capture_output=True, text=True, timeout=1800,
        )
        if proc.returncode != 0:
            pytest.fail(f"cannot install s3fs into the reference venv:\n{proc.stderr[-3000:]}", pytrace=False)
    monkeypatch.setenv("ZARR_VECTORS_BACKEND", "fsspec")
    return reference


def test_reference_reads_and_validates_our_s3_store(zv, s3_reference, s3_url):
    positions, intensity = cloud(8000, 31)
    for lo, hi in ((0, 400), (400, 1000)):
        m = (positions[:, 2] >= lo) & (positions[:, 2] < hi)
        zv.write_points_partition(s3_url, positions[m], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes={"intensity": intensity[m]}, z_range=(lo, hi))
    zv.finalise(s3_url)
    got = s3_reference.read(s3_url)
    assert_same_multiset(got, (positions, {"intensity": intensity}))
    lo, hi = (0, 100, 200), (700, 900, 640)
    m = bbox_mask(positions, lo, hi)
    assert_same_multiset(s3_reference.read(s3_url, bbox=(lo, hi)), (positions[m], {"intensity": intensity[m]}))
    report = s3_reference.validate(s3_url)
    assert not report["errors"], report["errors"]


def test_we_read_the_references_s3_store(zv, s3_reference, s3_url):
    positions, intensity = cloud(6000, 32)
    s3_reference.write(s3_url, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
    out = zv.read_points(s3_url)
    assert_same_multiset((out["positions"], dict(out["attributes"])), (positions, {"intensity": intensity}))
