"""A private one-node Slurm cluster for the tests: munged, slurmctld, slurmd.

Everything lives in one temporary directory: a fresh munge key and munged
socket (so an existing munged, if any, is never touched), a generated
slurm.conf with free TCP ports, state, spool, pid and log files. Clients
reach this cluster through ``SLURM_CONF`` (see :meth:`SlurmCluster.env`).

Known-good settings for Debian's slurm-wlm 22.05 on a small machine, run as
root: auth/munge, proctrack/linuxproc, task/none, select/cons_tres with
CR_Core_Memory, no accounting, no cgroup.conf.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
TERMINAL_STATES = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT",
}


class SlurmError(RuntimeError):
    """The cluster could not be started or a job could not be run."""


def _which(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return shutil.which(name, path=path)


def _need(name: str, package: str) -> str:
    exe = _which(name)
    if exe is None:
        raise SlurmError(f"{name} is not installed (Debian package {package}; scripts/bootstrap.sh installs it)")
    return exe


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise SlurmError("cannot read MemTotal from /proc/meminfo")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path.name})"
    return f"--- last lines of {path.name}:\n" + "\n".join(text[-lines:])


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "run" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.job_ids: list[str] = []

    # -- start ---------------------------------------------------------------
    @classmethod
    def start(cls, timeout: float = 60.0) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise SlurmError(
                "the Slurm test cluster must be started as root (slurmd runs jobs as their "
                "users, munged runs as user munge); run the tests as root or set ZVF_SKIP_SLURM=1"
            )
        for name, package in (("munged", "munge"), ("munge", "munge"), ("unmunge", "munge"),
                              ("slurmctld", "slurmctld"), ("slurmd", "slurmd"), ("sbatch", "slurm-client"),
                              ("squeue", "slurm-client"), ("sinfo", "slurm-client"),
                              ("scancel", "slurm-client")):
            _need(name, package)
        try:
            pwd.getpwnam("munge")
        except KeyError:
            raise SlurmError("there is no 'munge' user: install the Debian package munge") from None
        # A short directory: the munge socket path must fit in sun_path (108 bytes).
        base = tempfile.gettempdir()
        if len(base) > 40:
            base = "/tmp"
        root = Path(tempfile.mkdtemp(prefix="zvf-slurm-", dir=base))
        os.chmod(root, 0o755)
        cluster = cls(root)
        try:
            cluster._start_munge(timeout)
            cluster._write_conf()
            cluster._start_slurm(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_munge(self, timeout: float) -> None:
        munge_user = pwd.getpwnam("munge")
        m = self.root / "munge"
        dirs = {"etc": 0o700, "run": 0o755, "lib": 0o711, "log": 0o700}
        for d, mode in dirs.items():
            (m / d).mkdir(parents=True)
        key = m / "etc" / "munge.key"
        mungekey = _which("mungekey")
        if mungekey:
            subprocess.run([mungekey, "--create", "--keyfile", str(key)], check=True,
                           capture_output=True, timeout=30)
        else:  # munge < 0.5.14 has no mungekey: any 1024 random bytes will do
            key.write_bytes(os.urandom(1024))
        for path in [m, *(m / d for d in dirs), key]:
            os.chown(path, munge_user.pw_uid, munge_user.pw_gid)
        os.chmod(m, 0o755)
        for d, mode in dirs.items():
            os.chmod(m / d, mode)
        os.chmod(key, 0o400)
        log = open(m / "log" / "munged.stderr", "wb")
        self.procs["munged"] = subprocess.Popen(
            [_need("munged", "munge"), "--foreground", f"--socket={self.munge_socket}",
             f"--key-file={key}", f"--log-file={m / 'log' / 'munged.log'}",
             f"--pid-file={m / 'run' / 'munged.pid'}", f"--seed-file={m / 'lib' / 'munged.seed'}"],
            user=munge_user.pw_uid, group=munge_user.pw_gid, extra_groups=[],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.procs["munged"].poll() is not None:
                raise SlurmError(
                    f"munged exited with status {self.procs['munged'].returncode}\n"
                    + _tail(m / "log" / "munged.stderr") + "\n" + _tail(m / "log" / "munged.log")
                )
            if self.munge_socket.exists():
                cred = subprocess.run([_need("munge", "munge"), "-n", "-S", str(self.munge_socket)],
                                      capture_output=True, timeout=10)
                check = subprocess.run([_need("unmunge", "munge"), "-S", str(self.munge_socket)],
                                       input=cred.stdout, capture_output=True, timeout=10)
                last = (check.stdout + check.stderr).decode(errors="replace")
                if check.returncode == 0 and "Success" in last:
                    return
            time.sleep(0.1)
        raise SlurmError(f"munged did not answer within {timeout:.0f} s: {last}\n" + _tail(m / "log" / "munged.log"))

    def _write_conf(self) -> None:
        r = self.root
        for d in ("state", "spool", "log", "run"):
            (r / d).mkdir()
        cpus = os.cpu_count() or 1
        memory = max(_memory_mb() - 1024, 1024)  # below the machine's, or slurmd drains the node
        ctld_port, slurmd_port = _free_port(), _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        self.conf.write_text(
            "\n".join([
                "# Generated by tests/hpc for a private one-node cluster.",
                "ClusterName=zvftest",
                f"SlurmctldHost={self.host}(127.0.0.1)",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={slurmd_port}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.munge_socket}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "SchedulerType=sched/builtin",
                "DependencyParameters=kill_invalid_depend",
                "SlurmUser=root",
                "SlurmdUser=root",
                "ReturnToService=2",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "MpiDefault=none",
                "MinJobAge=600",
                f"StateSaveLocation={r / 'state'}",
                f"SlurmdSpoolDir={r / 'spool'}",
                f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
                f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
                f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN",
                f"PartitionName=zvf Nodes={self.host} Default=YES State=UP OverSubscribe=YES MaxTime=INFINITE",
                "",
            ])
        )

    def _start_slurm(self, timeout: float) -> None:
        env = self.env()
        logs = self.root / "log"
        for name, args in (("slurmctld", ["-D", "-f", str(self.conf)]),
                           ("slurmd", ["-D", "-f", str(self.conf), "-N", self.host])):
            out = open(logs / f"{name}.stderr", "wb")
            self.procs[name] = subprocess.Popen(
                [_need(name, name), *args], env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
            out.close()
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name in ("slurmctld", "slurmd"):
                if self.procs[name].poll() is not None:
                    raise SlurmError(
                        f"{name} exited with status {self.procs[name].returncode} during start-up\n"
                        + _tail(logs / f"{name}.stderr") + "\n" + _tail(logs / f"{name}.log")
                    )
            proc = subprocess.run([_need("sinfo", "slurm-client"), "-h", "-N", "-o", "%T"],
                                  env=env, capture_output=True, text=True, timeout=30)
            state = (proc.stdout + proc.stderr).strip()
            if proc.returncode == 0 and state == "idle":
                return
            time.sleep(0.2)
        raise SlurmError(
            f"the node did not become idle within {timeout:.0f} s (sinfo: {state!r})\n"
            + _tail(logs / "slurmctld.log") + "\n" + _tail(logs / "slurmd.log")
        )

    # -- use -----------------------------------------------------------------
    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        for key in [k for k in env if k.startswith(("SBATCH_", "SLURM_")) and k != "SLURM_CONF"]:
            del env[key]  # an outer Slurm job's settings must not leak into ours
        env.update(extra or {})
        return env

    def sbatch(self, *args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> str:
        """Submit; returns the job id."""
        proc = subprocess.run([_need("sbatch", "slurm-client"), "--parsable", *map(str, args)],
                              env=self.env(env), cwd=cwd, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise SlurmError(f"sbatch {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr}")
        job_id = proc.stdout.strip().split(";")[0]
        self.job_ids.append(job_id)
        return job_id

    def states(self, *job_ids: str) -> dict[str, str]:
        """{job or array task id: state} for every task of the given jobs."""
        proc = subprocess.run([_need("squeue", "slurm-client"), "-h", "-t", "all", "-j", ",".join(job_ids),
                               "-o", "%i %T"], env=self.env(), capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise SlurmError(f"squeue failed ({proc.returncode}): {proc.stderr}")
        return dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip())

    def wait(self, *job_ids: str, timeout: float = 180.0) -> dict[str, str]:
        """Poll squeue until every task of the jobs is in a final state."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.states(*job_ids)
            if states and all(s.split()[0] in TERMINAL_STATES for s in states.values()):
                return states
            time.sleep(0.3)
        raise SlurmError(f"jobs {job_ids} not finished after {timeout:.0f} s: {states}\n"
                         + _tail(self.root / "log" / "slurmctld.log"))

    # -- stop ----------------------------------------------------------------
    def stop(self) -> None:
        env = self.env()
        if self.job_ids and "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run([_need("scancel", "slurm-client"), *self.job_ids], env=env,
                           capture_output=True, timeout=60)
            try:
                self.wait(*self.job_ids, timeout=30)
            except SlurmError:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:  # a daemon may wait for a peer already gone: do not wait long
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        shutil.rmtree(self.root, ignore_errors=True)
