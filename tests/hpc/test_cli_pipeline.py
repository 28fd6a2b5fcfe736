"""A Python-free Slurm-style pipeline with the zvf CLI.

examples/hpc/submit_array_cli.sh runs as four concurrent "array tasks" (bash
with SLURM_ARRAY_TASK_ID set; test_slurm.py also runs it under Slurm), each
handing its slab to `zvf write-partition` from a different input format
(.npy, CSV, binary PLY, ASCII PLY). Then `zvf info`, `zvf finalise`,
`zvf query --bbox` to CSV and .npy, `zvf validate`, and the exit codes of failures.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_multiset, bbox_mask, select

from .hpcutil import EXAMPLES, check, describe, generated, job_env, read_ours, run

TOTAL = 8_000
SLAB_DZ = 2500
GRID = dict(CHUNK="1250,1250,1250", BIN="625,625,625")
EXIT = {"usage": 2, "invalid": 3, "not_found": 4, "corrupt": 5, "conflict": 6}


def _slab(points, i):
    z = points[0][:, 2].astype(np.float64)
    return select(points, (z >= i * SLAB_DZ) & (z < (i + 1) * SLAB_DZ))


def _write_npy(path: Path, points):
    np.save(path.with_suffix(".npy"), points[0])
    np.save(path.parent / f"{path.name}_intensity.npy", points[1]["intensity"])


def _write_csv(path: Path, points):
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "z", "intensity"])
        for p, v in zip(points[0], points[1]["intensity"]):
            w.writerow([repr(float(p[0])), repr(float(p[1])), repr(float(p[2])), repr(float(v))])


def _ply_header(fmt: str, n: int) -> str:
    return (f"ply\nformat {fmt} 1.0\ncomment zvf test slab\nelement vertex {n}\n"
            "property float x\nproperty float y\nproperty float z\nproperty float intensity\nend_header\n")


def _write_ply(path: Path, points, binary: bool):
    pos, inten = points[0], points[1]["intensity"]
    rows = np.empty(len(pos), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    rows["x"], rows["y"], rows["z"], rows["intensity"] = pos[:, 0], pos[:, 1], pos[:, 2], inten
    with open(path.with_suffix(".ply"), "wb") as f:
        f.write(_ply_header("binary_little_endian" if binary else "ascii", len(pos)).encode())
        if binary:
            f.write(rows.tobytes())
        else:
            for r in rows:
                f.write((" ".join(repr(float(v)) for v in r) + "\n").encode())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, zvf_cli):
    """Slab files in four formats, the four array tasks, before and after finalisation."""
    tmp = tmp_path_factory.mktemp("cli")
    expected = generated(2, total_points=TOTAL, seed=51)
    inputs = tmp / "slabs"
    inputs.mkdir()
    writers = [_write_npy, _write_csv, lambda p, s: _write_ply(p, s, True), lambda p, s: _write_ply(p, s, False)]
    for i, write in enumerate(writers):
        write(inputs / f"slab_{i}", _slab(expected, i))
    store = tmp / "scan.zarrvectors"

    procs = []
    for i in range(4):
        env = job_env(OUTPUT=store, INPUT_DIR=inputs, SLAB_DZ=SLAB_DZ, ZVF=zvf_cli, SLURM_ARRAY_TASK_ID=i, **GRID)
        procs.append(subprocess.Popen(["bash", str(EXAMPLES / "submit_array_cli.sh")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    tasks = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        tasks.append((p.returncode, out, err))
    pending_text = run([zvf_cli, "info", store])
    pending_json = run([zvf_cli, "info", store, "--json"])
    finalise = run([zvf_cli, "finalise", store])
    return dict(tmp=tmp, store=store, inputs=inputs, expected=expected, tasks=tasks,
                pending_text=pending_text, pending_json=pending_json, finalise=finalise)


def test_array_tasks_write_partitions_from_npy_csv_ply(pipeline):
    for i, (code, out, err) in enumerate(pipeline["tasks"]):
        assert code == 0, f"task {i} exited {code}:\n{out}\n{err}"
        assert "\r" not in err, f"task {i}: progress on stderr although it is not a terminal: {err!r}"


def test_info_lists_pending_partitions(pipeline):
    text = check(pipeline["pending_text"]).stdout
    assert "not finalised" in text and "4 complete" in text, text
    info = json.loads(check(pipeline["pending_json"]).stdout)
    assert info["finalised"] is False
    parts = {p["id"]: p for p in info["pending_partitions"]}
    assert sorted(parts) == sorted(f"z_{i * SLAB_DZ}_{(i + 1) * SLAB_DZ}" for i in range(4)), parts
    assert all(p["complete"] for p in parts.values())
    assert sum(p["vertex_count"] for p in parts.values()) == TOTAL


def test_finalise_then_store_holds_every_point(pipeline, zvf_cli):
    proc = check(pipeline["finalise"])
    assert "\r" not in proc.stderr
    assert_same_multiset(read_ours(pipeline["store"]), pipeline["expected"], "store written by zvf")
    report = check(run([zvf_cli, "validate", pipeline["store"], "--level", "5"])).stdout
    assert "valid: 0 error(s), 0 warning(s)" in report, report


def test_info_of_finalised_store(pipeline, zvf_cli):
    check(pipeline["finalise"])
    info = json.loads(check(run([zvf_cli, "info", pipeline["store"], "--json"])).stdout)
    assert info["finalised"] is True and info["pending_partitions"] == []
    level = info["levels"][0]
    assert level["vertex_count"] == TOTAL
    assert level["chunk_shape"] == [1250.0] * 3 and level["bin_shape"] == [625.0] * 3
    pos = pipeline["expected"][0]
    assert np.allclose(info["bounds"]["lo"], pos.min(axis=0)) and np.allclose(info["bounds"]["hi"], pos.max(axis=0))
    assert "intensity" in json.dumps(info["attributes"])
    text = check(run([zvf_cli, "info", pipeline["store"]])).stdout
    assert f"{TOTAL} vertices" in text and "chunk grid" in text, text


BBOX = ((1000.0, 2000.0, 1500.0), (6000.0, 7000.0, 8000.5))


def _bbox_arg(box):
    return ",".join(map(repr, box[0])) + ":" + ",".join(map(repr, box[1]))


def test_query_bbox_to_npy(pipeline, zvf_cli):
    check(pipeline["finalise"])
    out = pipeline["tmp"] / "roi.npy"
    check(run([zvf_cli, "query", pipeline["store"], "--bbox", _bbox_arg(BBOX), "--output", out]))
    got = (np.load(out), {"intensity": np.load(out.with_name("roi.intensity.npy"))})
    expected = select(pipeline["expected"], bbox_mask(pipeline["expected"][0], *BBOX))
    assert len(expected[0]) > 100
    assert_same_multiset(got, expected, "zvf query --bbox to .npy")


def test_query_bbox_to_csv(pipeline, zvf_cli):
    check(pipeline["finalise"])
    out = pipeline["tmp"] / "roi.csv"
    check(run([zvf_cli, "query", pipeline["store"], "--bbox", _bbox_arg(BBOX), "--output", out]))
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["x", "y", "z", "intensity"], rows[0]
    values = np.array(rows[1:], dtype=np.float64).reshape(-1, 4)
    got = (values[:, :3].astype(np.float32), {"intensity": values[:, 3].astype(np.float32)})
    expected = select(pipeline["expected"], bbox_mask(pipeline["expected"][0], *BBOX))
    assert_same_multiset(got, expected, "zvf query --bbox to CSV (values must round-trip)")


def test_query_without_bbox_returns_everything(pipeline, zvf_cli):
    check(pipeline["finalise"])
    out = pipeline["tmp"] / "all.npy"
    check(run([zvf_cli, "query", pipeline["store"], "--output", out]))
    got = (np.load(out), {"intensity": np.load(out.with_name("all.intensity.npy"))})
    assert_same_multiset(got, pipeline["expected"], "zvf query of the whole level")


# --------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------

def test_exit_codes_of_failures(pipeline, zvf_cli, tmp_path):
    store = tmp_path / "s.zarrvectors"
    slab0 = pipeline["inputs"] / "slab_0.npy"
    slab1_csv = pipeline["inputs"] / "slab_1.csv"
    common = ["--chunk-shape", "500,500,500", "--bin-shape", "125,125,125"]

    cases = {
        "usage: no --chunk-shape": ([zvf_cli, "write-partition", store, "--input", slab0, "--z-range", "0,2500"], "usage"),
        "usage: unknown option": ([zvf_cli, "finalise", store, "--no-such-option"], "usage"),
        "not found: input file": ([zvf_cli, "write-partition", store, "--input", tmp_path / "absent.npy", *common,
                                   "--z-range", "0,2500"], "not_found"),
        "invalid: points outside the range": ([zvf_cli, "write-partition", store, "--input", slab1_csv, *common,
                                               "--z-range", "0,2500"], "invalid"),
        "not found: query of a missing store": ([zvf_cli, "query", tmp_path / "absent.zarrvectors", "--output",
                                                 tmp_path / "q.npy"], "not_found"),
        "not found: info of a missing store": ([zvf_cli, "info", tmp_path / "absent.zarrvectors"], "not_found"),
    }
    for what, (cmd, kind) in cases.items():
        proc = run(cmd)
        assert proc.returncode == EXIT[kind], f"{what}: expected exit {EXIT[kind]}\n{describe(proc)}"
        assert proc.stderr.startswith("zvf: error:") or kind == "usage", f"{what}: {proc.stderr!r}"
        assert "Traceback" not in proc.stderr
    assert not (store / "zarr.json").exists()

    # The job script itself: a slab with no input file.
    env = job_env(OUTPUT=store, INPUT_DIR=pipeline["inputs"], SLAB_DZ=SLAB_DZ, ZVF=zvf_cli, SLURM_ARRAY_TASK_ID=7)
    proc = run(["bash", EXAMPLES / "submit_array_cli.sh"], env=env)
    assert proc.returncode == EXIT["not_found"] and "no input for slab 7" in proc.stderr, describe(proc)


def test_exit_code_of_corrupt_store(pipeline, zvf_cli, tmp_path):
    check(pipeline["finalise"])
    copy = tmp_path / "corrupt.zarrvectors"
    shutil.copytree(pipeline["store"], copy)
    cells = sorted(p for p in (copy / "0" / "vertices" / "c").rglob("*") if p.is_file())
    victim = cells[len(cells) // 2]
    victim.write_bytes(victim.read_bytes()[:5])  # truncated cell
    proc = run([zvf_cli, "query", copy, "--output", tmp_path / "q.npy"])
    assert proc.returncode == EXIT["corrupt"], describe(proc)


def test_progress_on_a_terminal_only(zvf_cli, tmp_path):
    """Progress goes to stderr when it is a terminal, and never into Slurm logs."""
    import os
    import pty

    rng = np.random.default_rng(52)
    np.save(tmp_path / "p.npy", rng.uniform(0.0, 1000.0, size=(50_000, 3)).astype(np.float32))
    args = ["--input", tmp_path / "p.npy", "--chunk-shape", "100,100,100", "--z-range", "0,1000"]

    logged = run([zvf_cli, "write-partition", tmp_path / "log.zarrvectors", *args])
    check(logged)
    assert logged.stderr == "", f"output on stderr although it is not a terminal: {logged.stderr!r}"

    master, slave = pty.openpty()
    proc = subprocess.Popen([str(zvf_cli), "write-partition", str(tmp_path / "tty.zarrvectors"), *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(master)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert b"%" in seen and b"\r" in seen, f"no progress on the terminal: {seen[:200]!r}"
