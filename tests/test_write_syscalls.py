"""The write path suits Lustre and GPFS: no synchronous opens, whole-cell sequential writes.

``zvf write-partition`` runs under ``strace -ff`` (one log per thread, so no
interleaved lines), and the system calls on every cell file are checked: no
O_SYNC/O_DSYNC/O_DIRECT, each cell written front to back in at most two
write calls (one writev of the 8-byte frame header and the payload), no seeks, and the
only fsyncs are those of the partition manifest. With ``--durable``, each file starts
its writeback as it is written (``sync_file_range``), and one ``syncfs`` flushes the
cells before the manifest is created.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

SYSCALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)")
TMP_SUFFIX = re.compile(r"\.\d+-[0-9a-f]{16}\.zvftmp$")


def test_cell_writes_are_large_sequential_and_never_synchronous(zvf_cli, tmp_path):
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is not installed (scripts/deps/hpc.apt lists it)")
    rng = np.random.default_rng(3)
    positions = rng.uniform(0, 100, size=(400_000, 3)).astype(np.float32)
    np.save(tmp_path / "slab.npy", positions)
    store = tmp_path / "s.zarrvectors"
    logs = tmp_path / "trace"
    cmd = [strace, "-ff", "-s", "0", "-o", str(logs),
           "-e", "trace=openat,open,creat,write,writev,pwrite64,pwritev,pwritev2,lseek,fsync,fdatasync,syncfs,sync,sync_file_range,close",
           zvf_cli, "write-partition", str(store), "--input", str(tmp_path / "slab.npy"),
           "--chunk-shape", "50,50,50", "--bin-shape", "12.5,12.5,12.5", "--z-range", "0,100", "--threads", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    cells: dict[str, dict] = {}  # final cell path -> {writes, bytes, seeks}
    fsyncs = 0
    syncs = 0
    opened_sync = []
    for log in tmp_path.glob("trace.*"):
        fds: dict[int, str] = {}
        for line in log.read_text().splitlines():
            m = SYSCALL.match(line)
            if not m:
                continue
            name, args, ret = m["name"], m["args"], int(m["ret"])
            if name in ("openat", "open", "creat"):
                if re.search(r"\bO_(SYNC|DSYNC|DIRECT)\b", args):
                    opened_sync.append(line)
                path = re.search(r'"([^"]*)"', args)
                # New cells are created in place; replaced ones go through a temp file.
                if ret >= 0 and path and "/0/vertices/c/" in path[1] and "O_CREAT" in args:
                    final = TMP_SUFFIX.sub("", path[1])
                    fds[ret] = final
                    cells[final] = {"writes": 0, "bytes": 0, "seeks": 0}
                continue
            fd = int(args.split(",")[0]) if args.split(",")[0].strip().isdigit() else -1
            if name in ("fsync", "fdatasync"):
                fsyncs += 1
            if name in ("syncfs", "sync", "sync_file_range"):
                syncs += 1
            if fd not in fds:
                continue
            if name in ("write", "writev"):
                cells[fds[fd]]["writes"] += 1
                cells[fds[fd]]["bytes"] += ret
            elif name in ("pwrite64", "pwritev", "pwritev2", "lseek"):
                cells[fds[fd]]["seeks"] += 1
            elif name == "close":
                del fds[fd]

    assert not opened_sync, f"synchronous opens: {opened_sync[:3]}"
    files = sorted(p for p in (store / "0" / "vertices" / "c").rglob("*") if p.is_file())
    assert len(files) == 8 and sorted(cells) == [str(p) for p in files]
    for path, c in cells.items():
        size = (store / path[len(str(store)) + 1:]).stat().st_size
        assert c["bytes"] == size, f"{path}: {c['bytes']} bytes written, file holds {size}"
        assert c["writes"] <= 2 and c["seeks"] == 0, f"{path}: {c}"
        assert size > 500_000  # 50 000 points: one ~600 kB write, not many small ones
    assert fsyncs <= 2, f"{fsyncs} fsync calls; only the manifest and its directory are synced"
    assert syncs == 0, "a write without --durable flushed the filesystem or started a writeback"


def test_durable_partition_flushes_its_cells_before_the_manifest(zvf_cli, tmp_path):
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is not installed (scripts/deps/hpc.apt lists it)")
    rng = np.random.default_rng(4)
    np.save(tmp_path / "slab.npy", rng.uniform(0, 100, size=(20_000, 3)).astype(np.float32))
    store = tmp_path / "s.zarrvectors"
    log = tmp_path / "trace"
    # -f without -ff: one log, in the order the calls completed across threads.
    cmd = [strace, "-f", "-s", "200", "-o", str(log), "-e", "trace=openat,syncfs,sync,fsync,sync_file_range",
           zvf_cli, "write-partition", str(store), "--input", str(tmp_path / "slab.npy"),
           "--chunk-shape", "50,50,50", "--z-range", "0,100", "--threads", "2", "--durable"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = log.read_text().splitlines()
    syncfs = [i for i, line in enumerate(lines) if re.search(r"\bsyncfs\(", line)]
    # Creates of cell files (a first try may fail with ENOENT before its directory exists).
    cells = [i for i, line in enumerate(lines) if "/0/vertices/c/" in line and "O_CREAT" in line]
    cell_paths = {re.search(r'"([^"]*)"', lines[i])[1] for i in cells}
    manifest = [i for i, line in enumerate(lines) if "manifest.json" in line and "O_CREAT" in line]
    assert len(syncfs) == 1, [lines[i] for i in syncfs]
    assert len(cell_paths) == 8 and manifest, (cell_paths, manifest)
    assert max(cells) < syncfs[0] < min(manifest), "the cells were not flushed before the manifest was written"
    # Each cell started its writeback as it was written (so that syncfs waits for less).
    early = [line for line in lines if re.search(r"\bsync_file_range\(", line)]
    assert len(early) >= len(cell_paths), f"{len(early)} sync_file_range calls for {len(cell_paths)} cells"
