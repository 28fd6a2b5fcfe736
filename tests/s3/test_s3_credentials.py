"""Credential sources beyond environment keys, each used for a real write and
read against moto on 127.0.0.1, through the fault proxy, which verifies every
request's SigV4 signature with the secret of the key that signed it:

- credential_process in a profile;
- role_arn + source_profile: STS AssumeRole (moto's STS, signed with the
  source profile's keys, and the proxy checks that signature too);
- web identity: AssumeRoleWithWebIdentity (unsigned) with a token file;
- container credentials (a local server that checks the authorization token);
- EC2 instance metadata, IMDSv2 (a local server that checks the session token);
- IAM Identity Center (SSO): the cached token, then a local portal server.

Temporary credentials close to expiry are renewed; credentials and tokens never
show in messages.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import textwrap

import pytest

from helpers import assert_same_multiset

from .cred_servers import ContainerCredentials, InstanceMetadata, SsoPortal
from .fault_proxy import FaultProxy, Rule
from .s3util import cloud

SOURCE_KEY = "AKIAZVFSOURCEKEY0001"
SOURCE_SECRET = "zvfSourceSecret/0123456789+ABCDEFGHIJ"
CHUNK = (250.0, 250.0, 250.0)


@pytest.fixture
def aws_home(tmp_path, monkeypatch):
    """An empty AWS setup: no keys in the environment, profile files in tmp,
    instance metadata off (tests that want it turn it on)."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / ".aws").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / ".aws" / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    class Home:
        path = tmp_path

        def files(self, config: str = "", credentials: str = "") -> None:
            (tmp_path / ".aws" / "config").write_text(textwrap.dedent(config))
            (tmp_path / ".aws" / "credentials").write_text(textwrap.dedent(credentials))

    return Home()


@pytest.fixture
def sts_proxy(s3_server, monkeypatch):
    """A proxy in front of moto (S3 and STS): trusts the source keys and every
    key that STS hands out through it; STS goes through it too."""
    with FaultProxy(s3_server.endpoint, verify=(SOURCE_KEY, SOURCE_SECRET), learn_sts=True) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", p.endpoint)
        yield p


def via(proxy, s3_url: str) -> str:
    return f"{s3_url}?endpoint={proxy.endpoint}"


def roundtrip(zv, url: str, seed: int = 1) -> None:
    positions, intensity = cloud(3000, seed)
    zv.write_points(url, positions, chunk_shape=CHUNK, attributes={"intensity": intensity})
    out = zv.read_points(url)
    assert_same_multiset((out["positions"], dict(out["attributes"])), (positions, {"intensity": intensity}))


def s3_keys(proxy) -> set[str]:
    """Access keys that signed requests to S3 (not STS)."""
    return set(proxy.access_keys)


def assert_signed_only_by(proxy, keys) -> None:
    assert proxy.signed_requests > 10
    assert not proxy.signature_failures, proxy.signature_failures[:3]
    used = s3_keys(proxy)
    assert used and used <= set(keys), (used, keys)


def test_credential_process(zv, aws_home, proxy, s3_url, tmp_path):
    from .s3util import ACCESS_KEY, SECRET_KEY

    script = tmp_path / "creds.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"echo '{{\"Version\": 1, \"AccessKeyId\": \"{ACCESS_KEY}\", \"SecretAccessKey\": \"{SECRET_KEY}\"}}'\n")
    script.chmod(0o700)
    aws_home.files(config=f"[profile proc]\ncredential_process = {script}\n")
    roundtrip(zv, via(proxy, s3_url) + "&profile=proc")
    assert_signed_only_by(proxy, {ACCESS_KEY})


def test_assume_role_with_source_profile(zv, aws_home, sts_proxy, s3_url):
    aws_home.files(
        config="""\
        [profile reader]
        role_arn = arn:aws:iam::123456789012:role/zvf-reader
        source_profile = base
        role_session_name = zvf-test
        duration_seconds = 3600
        """,
        credentials=f"[base]\naws_access_key_id = {SOURCE_KEY}\naws_secret_access_key = {SOURCE_SECRET}\n")
    roundtrip(zv, via(sts_proxy, s3_url) + "&profile=reader")
    sts = [p for m, p in sts_proxy.requests if m == "POST" and p == "/"]
    assert len(sts) == 1, "the assumed role's credentials are cached, not fetched per request"
    # STS was signed with the source keys (verified), S3 only with the role's.
    assert SOURCE_KEY in sts_proxy.access_keys
    role_keys = set(sts_proxy.credentials) - {SOURCE_KEY}
    assert len(role_keys) == 1
    assert not sts_proxy.signature_failures, sts_proxy.signature_failures[:3]
    assert set(sts_proxy.access_keys) == {SOURCE_KEY} | role_keys
    assert sts_proxy.access_keys.count(SOURCE_KEY) == 1


def test_role_chain_and_sts_failure_message(zv, errors, aws_home, sts_proxy, s3_url, zvf_cli):
    aws_home.files(
        config="""\
        [profile outer]
        role_arn = arn:aws:iam::123456789012:role/outer
        source_profile = inner
        [profile inner]
        role_arn = arn:aws:iam::123456789012:role/inner
        source_profile = base
        """,
        credentials=f"[base]\naws_access_key_id = {SOURCE_KEY}\naws_secret_access_key = {SOURCE_SECRET}\n")
    roundtrip(zv, via(sts_proxy, s3_url) + "&profile=outer")
    assert len([1 for m, p in sts_proxy.requests if p == "/"]) == 2  # base -> inner -> outer
    assert not sts_proxy.signature_failures, sts_proxy.signature_failures[:3]
    # STS refuses: the message names the role and STS's answer, never a key.
    sts_proxy.set_rules([Rule("forbidden", method="POST", action="AssumeRole")])
    url = via(sts_proxy, s3_url.replace("scan.zarrvectors", "other.zarrvectors")) + "&profile=outer"
    res = subprocess.run([zvf_cli, "info", url], capture_output=True, text=True)
    assert res.returncode != 0
    assert "arn:aws:iam::123456789012:role/inner" in res.stderr and "AccessDenied" in res.stderr, res.stderr
    for secret in (SOURCE_KEY, SOURCE_SECRET):
        assert secret not in res.stderr + res.stdout


def test_web_identity(zv, aws_home, sts_proxy, s3_url, tmp_path, monkeypatch, zvf_cli):
    token = "eyJhbGciOiJSUzI1NiJ9.zvfWebIdentityToken0123456789.sig"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/zvf-web")
    roundtrip(zv, via(sts_proxy, s3_url))
    calls = [p for m, p in sts_proxy.requests if m == "POST" and p == "/"]
    assert len(calls) == 1
    assert SOURCE_KEY not in sts_proxy.access_keys  # AssumeRoleWithWebIdentity is not signed
    assert_signed_only_by(sts_proxy, set(sts_proxy.credentials) - {SOURCE_KEY})
    # Refused: the token is not in the message.
    sts_proxy.set_rules([Rule("forbidden", method="POST", action="AssumeRoleWithWebIdentity")])
    res = subprocess.run([zvf_cli, "info", via(sts_proxy, s3_url.replace("scan", "other"))],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "AssumeRoleWithWebIdentity" in res.stderr, res.stderr
    assert token not in res.stderr and "zvfWebIdentityToken" not in res.stderr


def test_container_credentials_with_token_file(zv, aws_home, proxy, s3_url, tmp_path, monkeypatch):
    token = "zvfContainerAuthToken0123456789"
    (tmp_path / "auth").write_text(token + "\n")
    with ContainerCredentials(auth_token=token, on_issue=proxy.trust) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint + "/creds")
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(tmp_path / "auth"))
        roundtrip(zv, via(proxy, s3_url))
        assert len(server.issued) == 1 and server.rejected == 0
        assert_signed_only_by(proxy, server.issued)


def test_container_credentials_wrong_token_is_a_clear_error(zv, aws_home, proxy, s3_url, monkeypatch, zvf_cli):
    with ContainerCredentials(auth_token="the-right-token-1234", on_issue=proxy.trust) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint + "/creds")
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "zvfWrongContainerToken5678")
        res = subprocess.run([zvf_cli, "info", via(proxy, s3_url)], capture_output=True, text=True)
        assert res.returncode != 0
        assert "container credentials" in res.stderr and "HTTP 401" in res.stderr, res.stderr
        assert "zvfWrongContainerToken5678" not in res.stderr
        assert server.rejected >= 1 and not server.issued


def test_instance_metadata_v2(zv, aws_home, proxy, s3_url, monkeypatch):
    with InstanceMetadata(on_issue=proxy.trust) as imds:
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint)
        roundtrip(zv, via(proxy, s3_url))
        assert imds.rejected == 0 and len(imds.tokens_issued) >= 1 and len(imds.issued) >= 1
        assert_signed_only_by(proxy, imds.issued)


def test_instance_metadata_disabled_or_absent_means_anonymous(zv, aws_home, proxy, s3_url, monkeypatch):
    # Disabled: unsigned requests (moto serves them).
    positions, intensity = cloud(500, 3)
    zv.write_points(via(proxy, s3_url), positions, chunk_shape=CHUNK)
    assert proxy.requests and not proxy.access_keys
    # Enabled, but nothing answers there (a closed port on loopback): anonymous too.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}")
    proxy.clear()
    zv.write_points(via(proxy, s3_url.replace("scan", "second")), positions, chunk_shape=CHUNK)
    assert proxy.requests and not proxy.access_keys
    # (moto keeps anonymously written objects private, so they are read back with keys.)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREADER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "reader-secret")
    assert len(zv.read_points(s3_url.replace("scan", "second"))["positions"]) == 500


def test_sso_cached_token_and_portal(zv, aws_home, proxy, s3_url, monkeypatch):
    access_token = "zvfSsoAccessToken0123456789abcdef"
    start_url = "https://zvf-test.awsapps.com/start"
    cache = aws_home.path / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (cache / "a1.json").write_text(json.dumps({"startUrl": start_url, "region": "eu-west-1",
                                               "accessToken": access_token, "expiresAt": later}))
    (cache / "b2.json").write_text(json.dumps({"startUrl": start_url, "accessToken": "stale", "expiresAt": earlier}))
    (cache / "c3.json").write_text(json.dumps({"clientId": "x", "clientSecret": "y"}))  # a client registration
    aws_home.files(config=f"""\
        [profile sso]
        sso_session = corp
        sso_account_id = 111122223333
        sso_role_name = Reader
        [sso-session corp]
        sso_start_url = {start_url}
        sso_region = eu-west-1
        """)
    with SsoPortal(access_token, "111122223333", "Reader", on_issue=proxy.trust) as portal:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", portal.endpoint)
        roundtrip(zv, via(proxy, s3_url) + "&profile=sso")
        assert portal.rejected == 0 and len(portal.issued) == 1
        assert_signed_only_by(proxy, portal.issued)


def test_sso_expired_token_says_to_log_in(zv, errors, aws_home, s3_url):
    cache = aws_home.path / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    (cache / "x.json").write_text(json.dumps({"startUrl": "https://s/start", "accessToken": "zvfExpiredSsoToken99",
                                              "expiresAt": "2020-01-01T00:00:00Z"}))
    aws_home.files(config="[profile sso]\nsso_start_url = https://s/start\nsso_region = us-east-1\n"
                          "sso_account_id = 1\nsso_role_name = R\n")
    with pytest.raises(errors.StoreIOError, match="expired.*aws sso login --profile sso") as info:
        zv.read_points(s3_url + "?profile=sso")
    assert "zvfExpiredSsoToken99" not in str(info.value)


def test_temporary_credentials_are_renewed_before_they_expire(zv, aws_home, proxy, s3_url, monkeypatch):
    # Two minutes left: inside the five-minute renewal window, so each use renews.
    with ContainerCredentials(lifetime=120, on_issue=proxy.trust) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint + "/creds")
        roundtrip(zv, via(proxy, s3_url))
        assert len(server.issued) > 5
        assert len(s3_keys(proxy)) > 5  # the requests used the renewed keys
        assert_signed_only_by(proxy, server.issued)
    # An hour left: fetched once for the whole job.
    proxy.clear()
    with ContainerCredentials(lifetime=3600, on_issue=proxy.trust) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint + "/creds")
        roundtrip(zv, via(proxy, s3_url.replace("scan", "again")), seed=2)
        assert len(server.issued) == 1
        assert_signed_only_by(proxy, server.issued)


def test_expired_token_from_the_server_triggers_a_renewal(zv, aws_home, proxy, s3_url, monkeypatch):
    """The server rejects the first credentials (clock skew, early revocation):
    the store renews them once and the request goes through."""
    with ContainerCredentials(lifetime=3600, on_issue=proxy.trust) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.endpoint + "/creds")
        proxy.set_rules([Rule("forbidden", limit=1)])
        proxy.forbidden_code = "ExpiredToken"
        roundtrip(zv, via(proxy, s3_url))
        assert proxy.fault_count("forbidden") == 1
        assert len(server.issued) == 2
