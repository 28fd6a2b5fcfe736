"""Faults between the engine and S3: a proxy on loopback (fault_proxy.py)
injects 503 SlowDown, 500s, 403s, connection resets, truncated bodies and slow
responses. Writes retry and succeed; a write that keeps failing stops with an
error naming the key and the last status, and never a credential; nothing
half-written looks complete; bad reads say what is wrong. The proxy also
checks every request's SigV4 signature against botocore's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_multiset, bbox_mask

from .fault_proxy import Rule
from .s3util import ACCESS_KEY, BUCKET, SECRET_KEY, SESSION_TOKEN, cloud, keys_under

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)


def via(proxy, s3_url: str) -> str:
    return f"{s3_url}?endpoint={proxy.endpoint}"


def _points(out):
    return out["positions"], dict(out["attributes"])


def _no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a credential leaked into: {text}"


def _write_slabs(zv, url, positions, intensity, edges=(0, 300, 520, 1000)):
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (positions[:, 2] >= lo) & (positions[:, 2] < hi)
        zv.write_points_partition(url, positions[m], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes={"intensity": intensity[m]}, z_range=(lo, hi))


def test_pipeline_succeeds_through_every_kind_of_fault(zv, proxy, s3_url, monkeypatch):
    monkeypatch.setenv("ZVF_S3_REQUEST_TIMEOUT_MS", "1500")
    monkeypatch.setenv("ZVF_S3_MAX_ATTEMPTS", "12")
    proxy.set_rules([
        Rule("slowdown", rate=0.12),
        Rule("error500", rate=0.08),
        Rule("reset", rate=0.05),
        Rule("reset_after", rate=0.05, method="PUT"),  # the PUT took effect; the retry repeats it
        Rule("truncate", rate=0.15, method="GET"),
        Rule("slow", rate=0.02, delay=3.0),            # beyond the request timeout
        Rule("slow", rate=0.05, delay=0.2),            # merely slow
    ], seed=5)
    url = via(proxy, s3_url)
    positions, intensity = cloud(20_000, 11)
    _write_slabs(zv, url, positions, intensity)
    report = zv.finalise(url)
    assert report["changed"] and report["vertex_count"] == len(positions)
    assert_same_multiset(_points(zv.read_points(url)), (positions, {"intensity": intensity}))
    lo, hi = (100, 200, 250), (900, 700, 600)
    m = bbox_mask(positions, lo, hi)
    assert_same_multiset(_points(zv.read_points(url, bbox=(lo, hi))), (positions[m], {"intensity": intensity[m]}))
    for kind in ("slowdown", "error500", "reset", "reset_after", "truncate", "slow"):
        assert proxy.fault_count(kind) > 0, f"no {kind} was injected in {len(proxy.requests)} requests"
    assert proxy.signed_requests == len(proxy.requests) > 200
    assert not proxy.signature_failures, proxy.signature_failures[:3]


def test_slow_responses_time_out_and_are_retried(zv, proxy, s3_url, monkeypatch):
    positions, intensity = cloud(3000, 12)
    zv.write_points(s3_url, positions, chunk_shape=CHUNK, attributes={"intensity": intensity})
    monkeypatch.setenv("ZVF_S3_REQUEST_TIMEOUT_MS", "400")
    proxy.set_rules([Rule("slow", method="GET", path="/0/vertices/c/", first=3, delay=2.0)])
    t = time.monotonic()
    out = zv.read_points(via(proxy, s3_url))
    assert len(out["positions"]) == len(positions)
    assert proxy.fault_count("slow") == 3
    assert time.monotonic() - t < 30


@pytest.mark.parametrize("kind, status", [
    ("slowdown", "HTTP 503 SlowDown"),
    ("error500", "HTTP 500 InternalError"),
    ("reset", "network error"),
])
def test_write_that_keeps_failing_names_key_and_last_status(zv, proxy, s3_url, s3_prefix, boto, monkeypatch,
                                                            kind, status):
    monkeypatch.setenv("ZVF_S3_MAX_ATTEMPTS", "4")
    proxy.set_rules([Rule(kind, method="PUT", path="/0/vertices/c/")])
    positions, intensity = cloud(3000, 13)
    with pytest.raises(zv.errors.StoreIOError) as info:
        zv.write_points(via(proxy, s3_url), positions, chunk_shape=CHUNK, attributes={"intensity": intensity},
                        threads=1)
    msg = str(info.value)
    assert "PUT of '0/vertices/c/" in msg and f"s3://{BUCKET}/{s3_prefix}/0/vertices/c/" in msg, msg
    assert "after 4 attempt(s)" in msg and status in msg, msg
    _no_secrets(msg)
    # Exactly the configured number of attempts per failing key.
    puts = [p for m, p in proxy.requests if m == "PUT" and "/0/vertices/c/" in p]
    assert puts and all(puts.count(p) == 4 for p in set(puts)), puts
    # write_points cleaned up after itself: no store is visible.
    assert "zarr.json" not in keys_under(boto, BUCKET, s3_prefix)
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(s3_url)


def test_access_denied_is_reported_at_once(zv, proxy, s3_url):
    proxy.set_rules([Rule("forbidden", method="PUT")])
    positions, intensity = cloud(500, 14)
    with pytest.raises(zv.errors.StoreIOError, match="access denied") as info:
        zv.write_points_partition(via(proxy, s3_url), positions, chunk_shape=CHUNK,
                                  attributes={"intensity": intensity}, z_range=(0, 1000))
    msg = str(info.value)
    assert "HTTP 403 AccessDenied" in msg and "credentials from environment" in msg, msg
    _no_secrets(msg)
    puts = [p for m, p in proxy.requests if m == "PUT"]
    assert len(puts) == len(set(puts)), "a 403 must not be retried"


def test_partition_whose_writes_fail_is_not_complete(zv, proxy, s3_url, s3_prefix, boto, monkeypatch):
    monkeypatch.setenv("ZVF_S3_MAX_ATTEMPTS", "3")
    url = via(proxy, s3_url)
    positions, intensity = cloud(8000, 15)
    lower = positions[:, 2] < 500
    zv.write_points_partition(url, positions[lower], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={"intensity": intensity[lower]}, z_range=(0, 500))
    # The upper partition's cell writes fail for good (its in-place chunks, z >= 500).
    proxy.set_rules([Rule("error500", method="PUT", path="/0/vertices/c/")])
    with pytest.raises(zv.errors.StoreIOError, match="HTTP 500"):
        zv.write_points_partition(url, positions[~lower], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes={"intensity": intensity[~lower]}, z_range=(500, 1000))
    proxy.set_rules([])
    keys = keys_under(boto, BUCKET, s3_prefix)
    assert ".zvf/partitions/z_0_500/manifest.json" in keys
    assert ".zvf/partitions/z_500_1000/started.json" in keys
    assert ".zvf/partitions/z_500_1000/manifest.json" not in keys
    states = {p["id"]: p["complete"] for p in zv.package.list_partitions(url)}
    assert states == {"z_0_500": True, "z_500_1000": False}
    with pytest.raises(zv.errors.PartitionConflictError, match="z_500_1000"):
        zv.finalise(url)
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(url)
    # The retried task completes the store.
    zv.write_points_partition(url, positions[~lower], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={"intensity": intensity[~lower]}, z_range=(500, 1000))
    zv.finalise(url)
    assert_same_multiset(_points(zv.read_points(url)), (positions, {"intensity": intensity}))


def test_truncated_objects_are_retried_then_reported(zv, proxy, s3_url, monkeypatch):
    positions, intensity = cloud(4000, 16)
    zv.write_points(s3_url, positions, chunk_shape=CHUNK, attributes={"intensity": intensity})
    url = via(proxy, s3_url)
    proxy.set_rules([Rule("truncate", method="GET", path="/0/vertices/c/", first=5)])
    assert len(zv.read_points(url)["positions"]) == len(positions)  # truncated 5 times, retried
    assert proxy.fault_count("truncate") == 5
    monkeypatch.setenv("ZVF_S3_MAX_ATTEMPTS", "3")
    proxy.set_rules([Rule("truncate", method="GET", path="/0/vertices/c/")])
    with pytest.raises(zv.errors.StoreIOError) as info:
        zv.read_points(url, threads=1)
    msg = str(info.value)
    assert "GET of '0/vertices/c/" in msg and "truncated response" in msg and "after 3 attempt(s)" in msg, msg
    _no_secrets(msg)


def test_missing_cell_is_a_clear_error(zv, s3_url, s3_prefix, boto):
    positions, intensity = cloud(4000, 17)
    zv.write_points(s3_url, positions, chunk_shape=CHUNK, attributes={"intensity": intensity})
    victim = sorted(k for k in keys_under(boto, BUCKET, s3_prefix) if k.startswith("0/vertices/c/"))[0]
    boto.delete_object(Bucket=BUCKET, Key=f"{s3_prefix}/{victim}")
    with pytest.raises(zv.errors.CorruptStoreError, match="missing") as info:
        zv.read_points(s3_url)
    assert victim in str(info.value)


def _zvf(*args, env=None):
    exe = shutil.which("zvf") or str(Path(sys.executable).with_name("zvf"))
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_cli_failure_and_retry_log_show_no_credentials(zv, proxy, s3_url, tmp_path):
    positions, _ = cloud(2000, 18)
    np.save(tmp_path / "p.npy", positions)
    proxy.set_rules([Rule("slowdown", method="PUT", path="/0/vertices/c/")])
    env = dict(os.environ, ZVF_S3_LOG="1", ZVF_S3_MAX_ATTEMPTS="3")
    proc = _zvf("write-partition", via(proxy, s3_url), "-i", tmp_path / "p.npy", "--chunk-shape", "250,250,250",
                "--z-range=0,1000", "--threads", "1", env=env)
    assert proc.returncode == 7, proc.stderr  # I/O error
    assert "zvf s3: PUT" in proc.stderr and "retry 1 of 2" in proc.stderr, proc.stderr
    assert "HTTP 503 SlowDown" in proc.stderr and "after 3 attempt(s)" in proc.stderr, proc.stderr
    _no_secrets(proc.stderr + proc.stdout)
    info = _zvf("info", via(proxy, s3_url), "--json", env=env)
    assert info.returncode == 0, info.stderr
    pending = json.loads(info.stdout)
    assert "complete" in json.dumps(pending) and '"complete": true' not in json.dumps(pending)


def test_signatures_match_botocore_for_every_operation(zv, proxy, s3_url):
    """Everything the engine sends (GET, HEAD, PUT, copies, DeleteObjects, paged
    listings with odd prefixes, session token) is signed as AWS computes it."""
    url = via(proxy, s3_url.replace("scan.zarrvectors", "odd prefix+chars=/scan.zarrvectors"))
    positions, intensity = cloud(6000, 19)
    positions[:100, 2] *= -1  # negative chunks: finalise moves cells (copy + delete)
    _write_slabs(zv, url, positions, intensity, edges=(-1000, 0, 300, 1000))
    zv.finalise(url)
    zv.package.build_pyramid(url, factors=[(2.0, 1.0)])
    assert len(zv.read_points(url)["positions"]) == len(positions)
    methods = {m for m, _ in proxy.requests}
    assert methods == {"GET", "HEAD", "PUT", "POST", "DELETE"}, methods
    assert proxy.copy_requests > 0  # cells moved to the new grid origin
    assert any("delete=" in p for m, p in proxy.requests if m == "POST")  # DeleteObjects
    assert proxy.signed_requests == len(proxy.requests)
    assert not proxy.signature_failures, proxy.signature_failures[:3]
