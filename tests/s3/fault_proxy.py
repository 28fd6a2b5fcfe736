"""A fault-injecting HTTP reverse proxy for S3 tests, on loopback.

It sits between a client (our engine, s3fs, boto3) and an S3 server (moto),
forwards every request and, following its rules, injects faults instead:

    slowdown    503 with an S3 ``SlowDown`` error body (the request is not forwarded)
    error500    500 ``InternalError`` (not forwarded)
    error200    200 whose body is an ``InternalError`` (not forwarded), as S3 may
                answer CompleteMultipartUpload or CopyObject after the status line went out
    forbidden   403 ``AccessDenied`` (not forwarded)
    reset       the connection is reset (RST) before the request is forwarded
    reset_after the request is forwarded (it takes effect), then the connection is reset
    truncate    the response is forwarded with its full Content-Length but only
                half its body, then the connection is closed
    slow        the response is held back ``delay`` seconds, then forwarded
    hold        the request waits until ``release()`` (``held`` is set meanwhile), then is forwarded

A rule has a kind, a probability ``rate`` (drawn from a seeded RNG), and
optionally: ``method`` and ``path`` (a substring of the request path, query
included) to match, ``first`` (only the first N matching requests are
candidates) and ``limit`` (at most N injections). Rules are tried in order;
the first that fires wins.

With ``verify=(access_key, secret_key)`` the proxy also checks the SigV4
signature of every signed request with botocore's signer and records the
requests whose signature does not match in ``signature_failures``. More keys
can be added with ``trust(access_key, secret_key)``; with ``learn_sts=True``
the proxy trusts the credentials that STS responses passing through it hand
out. ``access_keys`` lists the access key of every signed request.

Only the standard library is needed (plus botocore for ``verify``). Threads,
no asyncio: one thread per client connection, keep-alive supported.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import random
import socket
import struct
import threading
import time
import urllib.parse
from typing import Iterable

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "expect",
}

KINDS = ("slowdown", "error500", "error200", "forbidden", "reset", "reset_after", "truncate", "slow", "hold")


@dataclasses.dataclass
class Rule:
    kind: str
    rate: float = 1.0
    method: str | None = None
    path: str | None = None
    first: int | None = None
    limit: int | None = None
    delay: float = 0.0
    action: str | None = None  # an AWS query API action in the form body ("AssumeRole")
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")

    def matches(self, method: str, path: str, body: bytes = b"") -> bool:
        if self.method and method.upper() != self.method.upper():
            return False
        if self.action and f"Action={self.action}&".encode() not in body + b"&":
            return False
        if self.path and self.path not in path:
            return False
        return True


def _error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet
        pass

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST, not FIN.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        chunks, left = [], length
        while left > 0:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                break
            chunks.append(data)
            left -= len(data)
        return b"".join(chunks)

    def _send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, *, head: bool = False,
              truncate: bool = False) -> None:
        self.send_response_only(status)
        has_length = False
        for name, value in headers:
            if name.lower() in _HOP_BY_HOP:
                continue
            if name.lower() == "content-length":
                has_length = True
                if not head:
                    value = str(len(body))
            self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(len(body)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _handle(self) -> None:
        proxy = self.server.proxy
        method, path = self.command, self.path
        body = self._read_body()
        proxy._record_request(method, path, self.headers, body)
        rule = proxy._pick(method, path, body)
        kind = rule.kind if rule else None
        if kind == "reset":
            proxy._record_fault(kind, method, path)
            self._reset()
            return
        if kind in ("slowdown", "error500", "error200", "forbidden"):
            proxy._record_fault(kind, method, path)
            status, code, message = {
                "slowdown": (503, "SlowDown", "Please reduce your request rate."),
                "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
                "error200": (200, "InternalError", "We encountered an internal error. Please try again."),
                "forbidden": (403, proxy.forbidden_code, "Access Denied"),
            }[kind]
            self._send(status, [("Content-Type", "application/xml")], _error_xml(code, message),
                       head=method == "HEAD")
            return
        if kind == "hold":
            proxy._record_fault(kind, method, path)
            proxy.held.set()
            proxy._release.wait(timeout=120)
        status, headers, resp_body = proxy._forward(method, path, self.headers, body)
        if proxy.learn_sts and b"<Credentials>" in resp_body:
            proxy._learn(resp_body)
        if kind == "reset_after":
            proxy._record_fault(kind, method, path)
            self._reset()
            return
        if kind == "slow":
            proxy._record_fault(kind, method, path)
            time.sleep(rule.delay)
        if kind == "truncate" and method != "HEAD" and len(resp_body) >= 2:
            proxy._record_fault(kind, method, path)
            self._send(status, headers, resp_body, truncate=True)
            return
        self._send(status, headers, resp_body, head=method == "HEAD")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: "FaultProxy"


class FaultProxy:
    """Reverse proxy to ``upstream`` ("http://127.0.0.1:PORT") with fault rules."""

    def __init__(self, upstream: str, rules: Iterable[Rule] = (), *, seed: int = 0,
                 verify: tuple[str, str] | None = None, host: str = "127.0.0.1", learn_sts: bool = False):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.rules: list[Rule] = list(rules)
        self.verify = verify
        self.credentials: dict[str, str] = dict([verify]) if verify else {}
        self.learn_sts = learn_sts
        self.forbidden_code = "AccessDenied"  # the S3 error code of "forbidden" faults (e.g. "ExpiredToken")
        self.access_keys: list[str] = []
        self.held = threading.Event()
        self._release = threading.Event()
        self.requests: list[tuple[str, str]] = []
        self.faults: list[tuple[str, str, str]] = []
        self.signature_failures: list[str] = []
        self.signed_requests = 0
        self.copy_requests = 0  # PUTs with x-amz-copy-source (server-side copies)
        self._server = _Server((host, 0), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultProxy":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="fault-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- rules and records ---------------------------------------------------
    def set_rules(self, rules: Iterable[Rule], seed: int | None = None) -> None:
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self._rng = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self.rules = []
            self.requests.clear()
            self.access_keys.clear()
            self.faults.clear()
            self.signature_failures.clear()
            self.signed_requests = 0
            self.copy_requests = 0

    def trust(self, access_key: str, secret_key: str) -> None:
        """Also accept signatures made with this key pair."""
        with self._lock:
            self.credentials[access_key] = secret_key

    def release(self) -> None:
        """Lets held requests (and later ones of a ``hold`` rule) through."""
        self._release.set()

    def _learn(self, body: bytes) -> None:
        import re

        text = body.decode(errors="replace")
        key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        secret = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", text)
        if key and secret:
            self.trust(key.group(1), secret.group(1))

    def fault_count(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for k, _, _ in self.faults if kind is None or k == kind)

    def _pick(self, method: str, path: str, body: bytes = b"") -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path, body):
                    continue
                rule.seen += 1
                if rule.first is not None and rule.seen > rule.first:
                    continue
                if rule.limit is not None and rule.fired >= rule.limit:
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                return rule
        return None

    def _record_fault(self, kind: str, method: str, path: str) -> None:
        with self._lock:
            self.faults.append((kind, method, path))

    def _record_request(self, method: str, path: str, headers, body: bytes) -> None:
        with self._lock:
            self.requests.append((method, path))
            if headers.get("x-amz-copy-source"):
                self.copy_requests += 1
        auth = headers.get("Authorization") or ""
        if auth.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in auth:
            with self._lock:
                self.access_keys.append(auth.split("Credential=", 1)[1].split("/", 1)[0])
        if (self.verify or self.credentials) and auth:
            with self._lock:
                known = dict(self.credentials)
            problem = _check_signature(known, method, path, headers, body)
            with self._lock:
                self.signed_requests += 1
                if problem:
                    self.signature_failures.append(f"{method} {path}: {problem}")

    def _forward(self, method: str, path: str, headers, body: bytes):
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            out["Content-Length"] = str(len(body))
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in out.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()


def _check_signature(known: dict[str, str], method: str, path: str, headers, body: bytes = b"") -> str | None:
    """None if the request's SigV4 signature is what botocore computes with the
    secret of its access key in ``known``, else why not."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth_header = headers.get("Authorization", "")
    if not auth_header.startswith("AWS4-HMAC-SHA256 "):
        return f"not a SigV4 authorization header: {auth_header[:20]}..."
    fields = dict(
        part.strip().split("=", 1) for part in auth_header[len("AWS4-HMAC-SHA256 "):].split(",")
    )
    access_key, date, region, service, _ = fields["Credential"].split("/")
    if access_key not in known:
        return f"signed with access key {access_key!r}, expected one of {sorted(known)!r}"
    secret = known[access_key]
    signed = fields["SignedHeaders"].split(";")
    missing = [h for h in signed if headers.get(h) is None]
    if missing:
        return f"signed headers not sent: {missing}"
    for required in ("host", "x-amz-date") + (("x-amz-content-sha256",) if service == "s3" else ()):
        if required not in signed:
            return f"{required} is not signed"
    if headers.get("x-amz-security-token") is not None and "x-amz-security-token" not in signed:
        return "x-amz-security-token is sent but not signed"
    host = headers["host"]
    # The path as sent (encoded once, as S3 wants it in the canonical request).
    raw_path, _, query = path.partition("?")
    url = f"http://{host}{raw_path}"
    if query:
        url += "?" + query
    request = AWSRequest(method=method, url=url, headers={h: headers[h] for h in signed},
                         data=body if service != "s3" else None)
    request.context["timestamp"] = headers["x-amz-date"]

    class _Signer(S3SigV4Auth):
        def _should_sha256_sign_payload(self, request):  # the header carries the payload hash
            return False

    # S3 takes the payload hash from x-amz-content-sha256; other services (STS) hash the body.
    signer_class = _Signer if service == "s3" else SigV4Auth
    signer = signer_class(Credentials(access_key, secret, headers.get("x-amz-security-token")), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != fields["Signature"]:
        return f"signature mismatch; botocore's canonical request:\n{canonical}"
    return None


__all__ = ["FaultProxy", "Rule", "KINDS"]
