"""Start and stop moto's standalone S3 server on 127.0.0.1 for the tests.

Used as a module by tests/s3/conftest.py and as a script by the CTest fixture:

    python tests/s3/moto_server.py start --state FILE [--bucket NAME]
    python tests/s3/moto_server.py stop --state FILE

``start`` picks a free port, starts the server in its own session (it outlives
the script), waits until it answers, creates the bucket and writes
``{"endpoint": ..., "pid": ..., "bucket": ...}`` to FILE. If no server can be
found it writes ``{"missing": "why"}`` and exits 0, unless ZVF_REQUIRE_S3 is
set, in which case it exits 1. Only the standard library is used.

The server is found as: $ZVF_MOTO_SERVER, the repo's .venv/bin/moto_server
(what scripts/bootstrap.sh installs), ``moto_server`` on PATH, or ``python -m moto.server`` for an interpreter that
can import moto.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BUCKET = "zvf-tests"


def find_server_command() -> list[str] | None:
    explicit = os.environ.get("ZVF_MOTO_SERVER")
    if explicit:
        return [explicit]
    venv = REPO_ROOT / ".venv" / "bin" / "moto_server"
    if venv.exists():
        return [str(venv)]
    on_path = shutil.which("moto_server")
    if on_path:
        return [on_path]
    for python in (sys.executable, str(REPO_ROOT / ".venv" / "bin" / "python")):
        if python and Path(python).exists():
            probe = subprocess.run([python, "-c", "import moto.server, flask"], capture_output=True)
            if probe.returncode == 0:
                return [python, "-m", "moto.server"]
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(endpoint: str) -> bool:
    try:
        with _no_proxy_opener().open(endpoint + "/", timeout=2) as resp:
            resp.read()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means it is up
    except OSError:
        return False


def create_bucket(endpoint: str, bucket: str) -> None:
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT", data=b"")
    try:
        with _no_proxy_opener().open(req, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:  # already there is fine
        if exc.code != 409:
            raise


class MotoServer:
    """A running moto server; ``stop()`` ends it (and its process group)."""

    def __init__(self, proc: subprocess.Popen, endpoint: str, log_path: str):
        self.proc = proc
        self.endpoint = endpoint
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_pid(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def start(host: str = "127.0.0.1", log_path: str | None = None, timeout: float = 60.0) -> MotoServer:
    cmd = find_server_command()
    if cmd is None:
        raise FileNotFoundError(
            "moto's S3 server was not found: install it with pip install 'moto[server]' "
            "(scripts/deps/s3.pip), or point ZVF_MOTO_SERVER at moto_server"
        )
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="zvf-moto-", suffix=".log")
        os.close(fd)
    env = dict(os.environ)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)
    last_error = ""
    for _ in range(5):  # the port may be taken between free_port() and bind
        port = free_port(host)
        endpoint = f"http://{host}:{port}"
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            [*cmd, "-H", host, "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _answers(endpoint):
                return MotoServer(proc, endpoint, log_path)
            time.sleep(0.1)
        if proc.poll() is None:
            stop_pid(proc.pid)
        last_error = Path(log_path).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"moto server did not start ({' '.join(cmd)}); log {log_path}:\n{last_error}")


def stop_pid(pid: int) -> None:
    """Ends the server's process group: SIGTERM, then SIGKILL after 5 s."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if pgid != pid:  # only ever a group the server leads (start_new_session)
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                # A zombie child of ours still answers kill(0); reap it if we can.
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        return
                except ChildProcessError:
                    pass
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--state", required=True, help="JSON file with the endpoint and pid")
    ap.add_argument("--bucket", default=DEFAULT_BUCKET)
    args = ap.parse_args()
    state = Path(args.state)
    if args.action == "stop":
        if state.exists():
            info = json.loads(state.read_text())
            if "pid" in info:
                stop_pid(int(info["pid"]))
            state.unlink()
        return 0
    if state.exists():  # a previous run that was not cleaned up
        info = json.loads(state.read_text())
        if "pid" in info:
            stop_pid(int(info["pid"]))
    try:
        server = start(log_path=str(state.with_suffix(".log")))
    except FileNotFoundError as exc:
        if os.environ.get("ZVF_REQUIRE_S3"):
            print(f"ZVF_REQUIRE_S3 is set but {exc}", file=sys.stderr)
            return 1
        state.write_text(json.dumps({"missing": str(exc)}))
        print(f"S3 tests will be skipped: {exc}")
        return 0
    create_bucket(server.endpoint, args.bucket)
    state.write_text(json.dumps({"endpoint": server.endpoint, "pid": server.pid, "bucket": args.bucket}))
    print(f"moto S3 server at {server.endpoint} (pid {server.pid}), bucket {args.bucket}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
