"""Fixtures for the S3 tests: a real S3 server on loopback, and a fault proxy.

A session-wide moto server (``moto_server``, PyPI ``moto[server]``) runs on
127.0.0.1 with a free port; every test gets its own prefix in one bucket, and
the usual AWS environment (credentials, region, AWS_ENDPOINT_URL) pointing at
the server, so the engine, the CLI, s3fs and boto3 all meet there. Without
moto the tests skip, unless ZVF_REQUIRE_S3 is set: then they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from . import moto_server
from .fault_proxy import FaultProxy
from .s3util import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, aws_env

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # tests/ holds helpers.py
    sys.path.insert(0, str(HERE.parent))


@pytest.fixture(scope="session")
def s3_server():
    """The moto server: ``.endpoint`` ("http://127.0.0.1:PORT")."""
    try:
        server = moto_server.start()
    except FileNotFoundError as exc:
        if os.environ.get("ZVF_REQUIRE_S3"):
            pytest.fail(f"ZVF_REQUIRE_S3 is set but {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        moto_server.create_bucket(server.endpoint, BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def s3_env(s3_server, monkeypatch):
    """AWS settings for this process and its children (multiprocessing, the CLI)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "ZVF_S3_LOG", "ZVF_S3_CONCURRENCY",
                "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    env = aws_env(s3_server.endpoint)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def bucket() -> str:
    return BUCKET


@pytest.fixture
def s3_prefix(request) -> str:
    """A fresh prefix for this test: "<test>-<uuid>/scan.zarrvectors"."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"{name}-{uuid.uuid4().hex[:12]}/scan.zarrvectors"


@pytest.fixture
def s3_url(s3_prefix) -> str:
    return f"s3://{BUCKET}/{s3_prefix}"


@pytest.fixture(scope="session")
def boto(s3_server):
    """A boto3 S3 client on the server (for checks and the `aws s3 sync` step)."""
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=s3_server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


@pytest.fixture
def proxy(s3_server):
    """A fault proxy in front of the server; it checks every SigV4 signature."""
    with FaultProxy(s3_server.endpoint, verify=(ACCESS_KEY, SECRET_KEY)) as p:
        yield p
