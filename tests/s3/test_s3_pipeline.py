"""The HPC guide's pipeline on S3: partitions written from several processes,
finalisation through open_store / write_multiscale_metadata, consolidated
metadata, bbox reads, pyramids, the zvf CLI, and a store built locally and
copied key for key to the bucket (the `aws s3 sync` step)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from helpers import assert_same_multiset, bbox_mask, list_files

from .s3util import BUCKET, cloud, keys_under, write_partition_worker

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)
# Slab edges that cut chunks (so finalisation merges staged pieces) and some that do not.
EDGES = [0.0, 200.0, 500.0, 730.0, 1000.0]


def _slabs(positions, intensity, edges=EDGES):
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (positions[:, 2] >= lo) & (positions[:, 2] < hi)
        yield lo, hi, np.ascontiguousarray(positions[m]), np.ascontiguousarray(intensity[m])


def _points(out):
    return out["positions"], dict(out["attributes"])


def test_write_points_on_s3_matches_local_key_for_key(zv, s3_url, s3_prefix, boto, tmp_path):
    positions, intensity = cloud(30_000, 1)
    local = tmp_path / "scan.zarrvectors"
    summary = zv.write_points(s3_url, positions, chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={"intensity": intensity})
    zv.write_points(str(local), positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
    assert summary["vertex_count"] == len(positions)
    remote = keys_under(boto, BUCKET, s3_prefix)
    assert sorted(remote) == list_files(local)
    for key, data in remote.items():  # one object per chunk cell, byte for byte
        assert data == (local / key).read_bytes(), key
    got = _points(zv.read_points(s3_url))
    assert_same_multiset(got, (positions, {"intensity": intensity}))
    lo, hi = (100.0, 0.0, 300.0), (620.5, 800.0, 700.0)
    box = _points(zv.read_points(s3_url, bbox=(lo, hi)))
    m = bbox_mask(positions, lo, hi)
    assert_same_multiset(box, (positions[m], {"intensity": intensity[m]}))


def test_partitions_from_several_processes_then_guide_finalisation(zv, s3_url, boto, s3_prefix):
    positions, intensity = cloud(40_000, 2)
    jobs = [(s3_url, p, a, lo, hi, CHUNK, BIN) for lo, hi, p, a in _slabs(positions, intensity)]
    # Separate interpreters, as Slurm tasks or MPI ranks are.
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        results = pool.map(write_partition_worker, jobs)
    assert sum(r["vertex_count"] for r in results) == len(positions)
    assert any(r["chunks_staged"] for r in results)
    parts = zv.package.list_partitions(s3_url)
    assert sorted(p["id"] for p in parts) == sorted(r["partition_id"] for r in results)
    assert all(p["complete"] for p in parts)
    with pytest.raises(zv.errors.StoreNotFoundError, match="finalise"):
        zv.read_points(s3_url)

    # The guide's finalisation step, verbatim apart from the URL.
    root = zv.open_store(s3_url, mode="r+")
    assert isinstance(root, zarr.Group)
    datasets = zv.write_multiscale_metadata(root)
    zarr.consolidate_metadata(root.store)
    assert datasets[0]["path"] == "0"
    assert "multiscales" in root.attrs

    assert not [k for k in keys_under(boto, BUCKET, s3_prefix) if k.startswith(".zvf/")]
    group = zv.open_store(s3_url)
    assert group.metadata.consolidated_metadata is not None
    assert "0" in group
    assert_same_multiset(_points(zv.read_points(s3_url)), (positions, {"intensity": intensity}))
    for lo, hi in [((0, 0, 150), (1000, 1000, 560)), ((333.3, 12.5, 0), (500, 999, 1000))]:
        m = bbox_mask(positions, lo, hi)
        assert_same_multiset(_points(zv.read_points(s3_url, bbox=(lo, hi))),
                             (positions[m], {"intensity": intensity[m]}))
    # Finalising again changes nothing.
    assert zv.finalise(s3_url)["changed"] is False


def test_local_store_synced_to_bucket_finalises_and_reads_the_same(zv, tmp_path, boto, s3_url, s3_prefix):
    """Partitions written on local disk, copied object by object to S3 (what
    `aws s3 sync` does), finalise and read exactly like partitions written to
    S3 directly, and like the local store finalised in place."""
    positions, intensity = cloud(25_000, 3)
    local = tmp_path / "scan.zarrvectors"
    direct = s3_url.replace("/scan.zarrvectors", "/direct/scan.zarrvectors")
    for lo, hi, p, a in _slabs(positions, intensity):
        for target in (str(local), direct):
            zv.write_points_partition(target, p, chunk_shape=CHUNK, bin_shape=BIN,
                                      attributes={"intensity": a}, z_range=(lo, hi))
    for rel in list_files(local):  # the sync step
        boto.put_object(Bucket=BUCKET, Key=f"{s3_prefix}/{rel}", Body=(local / rel).read_bytes())
    local_copy = tmp_path / "copy" / "scan.zarrvectors"
    shutil.copytree(local, local_copy)

    for target in (s3_url, direct, str(local_copy)):
        report = zv.finalise(target)
        assert report["changed"] and report["vertex_count"] == len(positions)
    synced = keys_under(boto, BUCKET, s3_prefix)
    directly = keys_under(boto, BUCKET, direct[len(f"s3://{BUCKET}/"):])
    assert sorted(synced) == sorted(directly) == list_files(local_copy)
    for key in synced:
        if key == "zarr.json":  # the ledger holds each partition's random run id
            continue
        assert synced[key] == directly[key] == (local_copy / key).read_bytes(), key
    root_synced, root_local = json.loads(synced["zarr.json"]), json.loads((local_copy / "zarr.json").read_text())
    assert root_synced == root_local  # same partitions, same run ids: identical
    expected = (positions, {"intensity": intensity})
    for target in (s3_url, direct, str(local_copy)):
        assert_same_multiset(_points(zv.read_points(target)), expected, target)


def test_finalised_local_store_synced_reads_the_same(zv, tmp_path, boto, s3_url, s3_prefix):
    positions, intensity = cloud(10_000, 4)
    local = tmp_path / "scan.zarrvectors"
    zv.write_points(str(local), positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
    for rel in list_files(local):
        boto.put_object(Bucket=BUCKET, Key=f"{s3_prefix}/{rel}", Body=(local / rel).read_bytes())
    lo, hi = (0, 0, 0), (400, 600, 1000)
    for target in (str(local), s3_url):
        m = bbox_mask(positions, lo, hi)
        assert_same_multiset(_points(zv.read_points(target, bbox=(lo, hi))), (positions[m], {"intensity": intensity[m]}))
    info = zv.package.store_info(s3_url)
    assert info == zv.package.store_info(str(local))


def test_pyramid_on_s3_matches_local(zv, tmp_path, s3_url):
    positions, intensity = cloud(20_000, 5)
    local = tmp_path / "scan.zarrvectors"
    for target in (str(local), s3_url):
        zv.write_points(target, positions, chunk_shape=CHUNK, bin_shape=BIN, attributes={"intensity": intensity})
        zv.package.build_pyramid(target, factors=[(2.0, 1.0), (2.0, 1.0)])
    for level in (1, 2):
        a = _points(zv.read_points(s3_url, level=level))
        b = _points(zv.read_points(str(local), level=level))
        assert_same_multiset(a, b, f"level {level}")
        assert 0 < len(a[0]) < len(positions)


def test_open_store_on_s3(zv, s3_url, s3_server):
    with pytest.raises(zv.errors.StoreNotFoundError, match="no store at s3://"):
        zv.open_store(s3_url)
    with pytest.raises(zv.errors.InvalidInputError, match="colour"):
        zv.open_store(s3_url + "?colour=red")
    positions, intensity = cloud(2000, 6)
    zv.write_points_partition(s3_url, positions, chunk_shape=CHUNK, attributes={"intensity": intensity},
                              z_range=(0, 1000))
    with pytest.raises(zv.errors.StoreNotFoundError, match="finalise it first"):
        zv.open_store(s3_url, mode="r")
    # An explicit endpoint option instead of AWS_ENDPOINT_URL, for engine and group alike.
    os.environ.pop("AWS_ENDPOINT_URL")
    url = f"{s3_url}?endpoint={s3_server.endpoint}"
    root = zv.open_store(url, mode="r+")
    from zarr_vectors.core.store import store_path

    assert store_path(root) == url
    zv.write_multiscale_metadata(root)
    zarr.consolidate_metadata(root.store)
    assert_same_multiset(_points(zv.read_points(url)), (positions, {"intensity": intensity}))


def test_s3_group_is_a_path_and_the_process_exits_cleanly(s3_url, s3_env):
    """The group open_store() returns works wherever a path does, and a script
    that used an S3 group leaves no aiohttp session open for exit to warn about."""
    script = f"""
import numpy as np
from zarr_vectors.core.store import open_store
from zarr_vectors.types.points import read_points, write_points
p = np.random.default_rng(3).random((500, 3), dtype=np.float32) * 100
write_points({s3_url!r}, p, chunk_shape=(50.0, 50.0, 50.0))
got = read_points(open_store({s3_url!r}))["positions"]
assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, p.tolist())), "points differ"
print("read", len(got))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **s3_env, "PYTHONWARNINGS": "default"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "read 500"
    assert "Unclosed" not in proc.stderr, proc.stderr


def _zvf(*args, check=True):
    exe = shutil.which("zvf") or str(Path(sys.executable).with_name("zvf"))
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"zvf {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_cli_on_s3(zv, tmp_path, s3_url):
    positions, intensity = cloud(12_000, 7)
    for lo, hi, p, a in _slabs(positions, intensity):
        np.save(tmp_path / f"p{lo}.npy", p)
        np.save(tmp_path / f"i{lo}.npy", a)
        _zvf("write-partition", s3_url, "-i", tmp_path / f"p{lo}.npy", "--attr-input", f"intensity={tmp_path}/i{lo}.npy",
             "--chunk-shape", "250,250,250", "--bin-shape", "125,125,125", f"--z-range={lo},{hi}")
    pending = json.loads(_zvf("info", s3_url, "--json").stdout)
    assert "partitions" in json.dumps(pending)
    _zvf("finalise", s3_url)
    info = json.loads(_zvf("info", s3_url, "--json").stdout)
    assert info["levels"][0]["vertex_count"] == len(positions)
    out = tmp_path / "roi.npy"
    _zvf("query", s3_url, "--bbox", "0,0,100:500,500,900", "-o", out)
    m = bbox_mask(positions, (0, 0, 100), (500, 500, 900))
    got = np.load(out), {"intensity": np.load(tmp_path / "roi.intensity.npy")}
    assert_same_multiset(got, (positions[m], {"intensity": intensity[m]}))
    missing = _zvf("info", s3_url.replace("scan.zarrvectors", "nothing-here"), check=False)
    assert missing.returncode == 4, missing.stderr
