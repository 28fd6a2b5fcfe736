"""Multipart uploads: objects above ZVF_S3_MULTIPART_THRESHOLD go up as
CreateMultipartUpload, UploadPart (in parallel, each retried), then
CompleteMultipartUpload; a part that keeps failing aborts the upload, so the
object never appears and no part stays stored. Against moto on 127.0.0.1,
through the fault proxy, with 5 MiB parts (S3's minimum) and objects of 12-20 MB."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from helpers import assert_same_multiset

from .fault_proxy import Rule
from .s3util import ACCESS_KEY, BUCKET, SECRET_KEY, SESSION_TOKEN

MiB = 1 << 20
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    monkeypatch.setenv("ZVF_S3_MULTIPART_THRESHOLD", "8MiB")
    monkeypatch.setenv("ZVF_S3_PART_SIZE", "5MiB")


@pytest.fixture(scope="module")
def raw():
    """The engine's store layer: _store_set / _store_get on any store URL."""
    from zarr_vectors import _zvf

    return _zvf


def payload(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def via(proxy, s3_url: str) -> str:
    return f"{s3_url}?endpoint={proxy.endpoint}"


def uploads_under(boto, prefix: str) -> list[str]:
    """Keys of multipart uploads still in progress under ``prefix``."""
    resp = boto.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [u["Key"] for u in resp.get("Uploads", [])]


def exists(boto, key: str) -> bool:
    try:
        boto.head_object(Bucket=BUCKET, Key=key)
        return True
    except boto.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchKey"), exc
        return False


def part_puts(proxy) -> list[str]:
    return [path for method, path in proxy.requests if method == "PUT" and "partNumber=" in path]


def test_roundtrip_is_byte_equal_and_uses_parts(raw, proxy, s3_url, s3_prefix, boto):
    url = via(proxy, s3_url)
    data = payload(13 * MiB + 12345, 1)  # 3 parts: 5 + 5 + 3 MiB
    raw._store_set(url, "0/vertices/c/0/0/0", data)
    assert raw._store_get(url, "0/vertices/c/0/0/0") == data
    assert boto.get_object(Bucket=BUCKET, Key=f"{s3_prefix}/0/vertices/c/0/0/0")["Body"].read() == data
    parts = part_puts(proxy)
    assert len(parts) == 3 and all(f"partNumber={i}&" in "".join(parts) for i in (1, 2, 3)), parts
    # S3 marks a multipart object's ETag with its part count.
    assert boto.head_object(Bucket=BUCKET, Key=f"{s3_prefix}/0/vertices/c/0/0/0")["ETag"].endswith('-3"')
    assert not uploads_under(boto, s3_prefix)
    assert not proxy.signature_failures, proxy.signature_failures[:3]
    # Below the threshold: one PUT, no parts.
    proxy.clear()
    small = payload(8 * MiB, 2)
    raw._store_set(url, "small", small)
    assert raw._store_get(url, "small") == small
    assert not part_puts(proxy)
    assert "-" not in boto.head_object(Bucket=BUCKET, Key=f"{s3_prefix}/small")["ETag"]


def test_object_is_absent_until_the_upload_completes(raw, proxy, s3_url, s3_prefix, boto):
    url = via(proxy, s3_url)
    data = payload(12 * MiB, 3)
    key = f"{s3_prefix}/big"
    proxy.set_rules([Rule("hold", method="POST", path="uploadId=")])  # CompleteMultipartUpload waits
    errors = []

    def write():
        try:
            raw._store_set(url, "big", data)
        except Exception as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert proxy.held.wait(timeout=120), "CompleteMultipartUpload never arrived"
        # Every part is uploaded, the upload is in progress, and the object is not there.
        assert len(part_puts(proxy)) == 3
        assert uploads_under(boto, s3_prefix) == [key]
        assert not exists(boto, key)
        assert raw._store_get(url, "big") is None
    finally:
        proxy.release()
        writer.join(timeout=120)
    assert not errors, errors
    assert raw._store_get(url, "big") == data
    assert not uploads_under(boto, s3_prefix)


def test_transient_part_failures_are_retried(raw, proxy, s3_url, s3_prefix, boto):
    url = via(proxy, s3_url)
    data = payload(17 * MiB, 4)  # 4 parts
    proxy.set_rules([
        Rule("error500", method="PUT", path="partNumber=2&", limit=3),
        Rule("slowdown", method="PUT", path="partNumber=", limit=2),
        Rule("reset", method="PUT", path="partNumber=4&", limit=1),
        Rule("reset_after", method="PUT", path="partNumber=1&", limit=1),  # stored, answer lost: sent again
    ])
    raw._store_set(url, "k", data)
    assert raw._store_get(url, "k") == data
    for kind in ("error500", "slowdown", "reset", "reset_after"):
        assert proxy.fault_count(kind) > 0, kind
    assert not uploads_under(boto, s3_prefix)


def test_error_inside_a_200_from_complete_is_retried(raw, proxy, s3_url, s3_prefix, boto):
    url = via(proxy, s3_url)
    data = payload(11 * MiB, 5)
    proxy.set_rules([Rule("error200", method="POST", path="uploadId=", limit=2)])
    raw._store_set(url, "k", data)
    assert proxy.fault_count("error200") == 2
    assert raw._store_get(url, "k") == data
    assert not uploads_under(boto, s3_prefix)


def test_lost_answer_to_complete_is_recognised(raw, proxy, s3_url, s3_prefix, boto):
    """Complete takes effect, its answer is lost; the retry finds no upload
    (NoSuchUpload) and accepts the object only because its ETag is exactly
    that of these parts."""
    url = via(proxy, s3_url)
    data = payload(11 * MiB, 6)
    proxy.set_rules([Rule("reset_after", method="POST", path="uploadId=", limit=1)])
    raw._store_set(url, "k", data)
    assert proxy.fault_count("reset_after") == 1
    assert raw._store_get(url, "k") == data


def _expect_aborted(zv, raw, url, boto, s3_prefix, key, needles):
    with pytest.raises(zv.errors.StoreIOError) as info:
        raw._store_set(url, key, payload(16 * MiB, 7))
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, msg
    assert "aborted" in msg, msg
    for secret in SECRETS:
        assert secret not in msg
    assert not exists(boto, f"{s3_prefix}/{key}")
    assert not uploads_under(boto, s3_prefix), "a failed upload was left in progress (its parts stay billed)"
    return msg


def test_part_that_keeps_failing_aborts_the_upload(zv, raw, proxy, s3_url, s3_prefix, boto, monkeypatch):
    monkeypatch.setenv("ZVF_S3_MAX_ATTEMPTS", "4")
    proxy.set_rules([Rule("error500", method="PUT", path="partNumber=2&")])
    msg = _expect_aborted(zv, raw, via(proxy, s3_url), boto, s3_prefix, "0/vertices/c/1/2/3",
                          ["'0/vertices/c/1/2/3'", "part 2 of 4", "4 attempt", "HTTP 500 InternalError"])
    assert f"s3://{BUCKET}/{s3_prefix}/0/vertices/c/1/2/3" in msg
    assert any(m == "DELETE" and "uploadId=" in p for m, p in proxy.requests), "no AbortMultipartUpload was sent"


def test_complete_that_keeps_failing_aborts_the_upload(zv, raw, proxy, s3_url, s3_prefix, boto, monkeypatch):
    monkeypatch.setenv("ZVF_S3_MAX_ATTEMPTS", "3")
    proxy.set_rules([Rule("error200", method="POST", path="uploadId=")])
    _expect_aborted(zv, raw, via(proxy, s3_url), boto, s3_prefix, "k",
                    ["CompleteMultipartUpload of 'k'", "3 attempt", "InternalError"])


def test_access_denied_on_a_part_aborts_at_once(zv, raw, proxy, s3_url, s3_prefix, boto):
    proxy.set_rules([Rule("forbidden", method="PUT", path="partNumber=3&")])
    _expect_aborted(zv, raw, via(proxy, s3_url), boto, s3_prefix, "k", ["part 3 of 4", "access denied"])


def test_bad_part_settings_are_rejected(zv, raw, s3_url, monkeypatch):
    monkeypatch.setenv("ZVF_S3_PART_SIZE", "1MiB")
    with pytest.raises(zv.errors.InvalidInputError, match="ZVF_S3_PART_SIZE='1MiB' is outside"):
        raw._store_get(s3_url, "k")
    monkeypatch.setenv("ZVF_S3_PART_SIZE", "lots")
    with pytest.raises(zv.errors.InvalidInputError, match="ZVF_S3_PART_SIZE='lots' is not a size"):
        raw._store_get(s3_url, "k")


def test_engine_writes_big_cells_as_multipart_uploads(zv, proxy, s3_url, s3_prefix, boto, monkeypatch):
    """The normal write path with a tiny threshold: every cell above 64 KiB
    goes up in parts, and the store reads back the same points."""
    monkeypatch.setenv("ZVF_S3_MULTIPART_THRESHOLD", "64KiB")
    url = via(proxy, s3_url)
    rng = np.random.default_rng(8)
    n = 600_000  # one chunk: its vertex cell is ~7 MB, two parts
    positions = rng.random((n, 3), dtype=np.float32) * 99.0
    intensity = rng.random(n, dtype=np.float32)
    zv.write_points(url, positions, chunk_shape=(100.0, 100.0, 100.0), attributes={"intensity": intensity})
    assert len(part_puts(proxy)) >= 2
    completes = [p for m, p in proxy.requests if m == "POST" and "uploadId=" in p]
    assert completes, "no multipart upload was completed"
    out = zv.read_points(url)
    assert_same_multiset((out["positions"], dict(out["attributes"])), (positions, {"intensity": intensity}))
    assert not uploads_under(boto, s3_prefix)
    assert not proxy.signature_failures, proxy.signature_failures[:3]
