"""Shared pieces of the S3 tests: settings, bucket checks, and the workers that
multiprocessing runs (a module of its own, so that spawned children import it)."""

from __future__ import annotations

import os

import numpy as np

BUCKET = "zvf-s3-tests"
# Distinctive values, so a test can prove they never reach a message or a log.
ACCESS_KEY = "AKIAZVFPYTESTKEY0001"
SECRET_KEY = "zvfPySecret/0123456789+ABCDEFGHIJklmnop"
SESSION_TOKEN = "zvfPySessionToken//0123456789abcdefghij=="
REGION = "us-east-1"


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        # Never ask the (link-local) EC2 instance metadata service from a test.
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        # Fast retries: the fault tests inject hundreds of failures.
        "ZVF_S3_RETRY_BASE_MS": "2",
        "ZVF_S3_RETRY_MAX_MS": "40",
        "ZVF_S3_MAX_ATTEMPTS": "10",
    }


def keys_under(boto, bucket: str, prefix: str) -> dict[str, bytes]:
    """{key relative to prefix: bytes} of every object under ``prefix/``."""
    out = {}
    paginator = boto.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            out[key[len(prefix.rstrip("/")) + 1:]] = boto.get_object(Bucket=bucket, Key=key)["Body"].read()
    return out


def write_partition_worker(args) -> dict:
    """One Slurm task's work: write one z-slab partition to ``url``."""
    url, positions, intensity, lo, hi, chunk, bin_shape = args
    from zarr_vectors.types.points import write_points_partition

    return write_points_partition(url, positions, chunk_shape=chunk, bin_shape=bin_shape,
                                  attributes={"intensity": intensity}, z_range=(lo, hi), threads=2)


def cloud(n: int, seed: int, hi=(1000.0, 1000.0, 1000.0)):
    rng = np.random.default_rng(seed)
    positions = (rng.random((n, 3)) * np.asarray(hi)).astype(np.float32)
    positions = np.minimum(positions, np.nextafter(np.asarray(hi, np.float32), np.float32(0)))
    intensity = rng.random(n, dtype=np.float32)
    return positions, intensity
