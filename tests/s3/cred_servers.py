"""Credential endpoints on 127.0.0.1 for the credential-source tests: ECS/EKS
container credentials, EC2 instance metadata (IMDSv2) and the IAM Identity
Center (SSO) portal. Each is a real HTTP server (http.server, one thread per
connection) that checks the token its clients must send and hands out
numbered credentials, which moto accepts (it does not check keys), and which
``on_issue`` passes on, e.g. to FaultProxy.trust so that the proxy verifies
the signatures made with them."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from typing import Callable


def _iso(seconds_from_now: float) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Base:
    """Hands out credentials: AKIA<PREFIX><n>, each valid ``lifetime`` seconds."""

    prefix = "CRED"

    def __init__(self, lifetime: float = 3600.0, on_issue: Callable[[str, str], None] | None = None):
        self.lifetime = lifetime
        self.on_issue = on_issue
        self.issued: dict[str, str] = {}  # access key -> secret
        self.tokens_issued: list[str] = []
        self.rejected = 0  # requests without the right token
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes, ctype: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer._handle(self, "GET")

            def do_PUT(self):
                outer._handle(self, "PUT")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def issue(self) -> dict:
        with self.lock:
            n = len(self.issued) + 1
            key = f"AKIA{self.prefix}{n:04d}"
            secret = f"{self.prefix.lower()}Secret{n:04d}/abcdefghij"
            token = f"{self.prefix.lower()}SessionToken{n:04d}+xyz=="
            self.issued[key] = secret
        if self.on_issue:
            self.on_issue(key, secret)
        return {"AccessKeyId": key, "SecretAccessKey": secret, "Token": token, "Expiration": _iso(self.lifetime)}

    def _reject(self, handler, status: int = 401):
        with self.lock:
            self.rejected += 1
        handler._reply(status, b'{"message": "bad or missing token"}')

    def _handle(self, handler, method: str):  # pragma: no cover - overridden
        raise NotImplementedError


class ContainerCredentials(_Base):
    """AWS_CONTAINER_CREDENTIALS_FULL_URI = endpoint + "/creds"; requires
    ``Authorization: <auth_token>`` when an auth_token is set."""

    prefix = "CTR"

    def __init__(self, auth_token: str | None = None, **kw):
        super().__init__(**kw)
        self.auth_token = auth_token

    def _handle(self, handler, method):
        if method != "GET" or handler.path != "/creds":
            return handler._reply(404, b"{}")
        if self.auth_token is not None and handler.headers.get("Authorization") != self.auth_token:
            return self._reject(handler)
        handler._reply(200, json.dumps(self.issue()).encode())


class InstanceMetadata(_Base):
    """IMDSv2: PUT /latest/api/token (with a TTL header) gives a session token,
    which every GET must carry in X-aws-ec2-metadata-token."""

    prefix = "IMDS"
    role = "zvf-test-role"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sessions: set[str] = set()

    def _handle(self, handler, method):
        if method == "PUT" and handler.path == "/latest/api/token":
            if not handler.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._reject(handler, 400)
            token = f"imdsSessionToken{len(self.sessions) + 1:04d}{int(time.time())}"
            with self.lock:
                self.sessions.add(token)
                self.tokens_issued.append(token)
            return handler._reply(200, token.encode(), "text/plain")
        if method != "GET":
            return handler._reply(405, b"")
        if handler.headers.get("X-aws-ec2-metadata-token") not in self.sessions:
            return self._reject(handler)
        base = "/latest/meta-data/iam/security-credentials/"
        if handler.path == base:
            return handler._reply(200, self.role.encode(), "text/plain")
        if handler.path == base + self.role:
            body = {"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": _iso(0), **self.issue()}
            return handler._reply(200, json.dumps(body).encode())
        handler._reply(404, b"")


class SsoPortal(_Base):
    """GET /federation/credentials?account_id=&role_name= with the bearer
    token that ``aws sso login`` would have cached."""

    prefix = "SSO"

    def __init__(self, access_token: str, account: str, role: str, **kw):
        super().__init__(**kw)
        self.access_token, self.account, self.role = access_token, account, role

    def _handle(self, handler, method):
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(handler.path)
        if method != "GET" or parts.path != "/federation/credentials":
            return handler._reply(404, b"{}")
        if handler.headers.get("x-amz-sso_bearer_token") != self.access_token:
            return self._reject(handler)
        q = parse_qs(parts.query)
        if q.get("account_id") != [self.account] or q.get("role_name") != [self.role]:
            return handler._reply(403, b'{"message": "no access"}')
        c = self.issue()
        expiration_ms = int((time.time() + self.lifetime) * 1000)
        body = {"roleCredentials": {"accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretAccessKey"],
                                    "sessionToken": c["Token"], "expiration": expiration_ms}}
        handler._reply(200, json.dumps(body).encode())
