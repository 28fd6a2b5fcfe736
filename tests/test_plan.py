"""Chunk planning (``plan_chunks``, ``zvf plan``) and Lustre striping (``zvf stripe``).

A planned layout is written for real and the cell files on disk are measured;
``zvf stripe --run`` runs a fake ``lfs`` (a script first on PATH that records
its argv) so the exact commands, and the directories they need, are checked.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli

GUIDE_BOUNDS = ((0.0, 0.0, 0.0), (10_000.0, 10_000.0, 10_000.0))

# Records one line per call: each argument followed by a tab, then whether the
# last argument (the target) was an existing directory at the time of the call.
FAKE_LFS = """#!/bin/sh
for a in "$@"; do printf '%s\\t' "$a" >> "$FAKE_LFS_LOG"; done
eval "target=\\${$#}"
if [ -d "$target" ]; then echo dir >> "$FAKE_LFS_LOG"; else echo missing >> "$FAKE_LFS_LOG"; fi
exit "${FAKE_LFS_EXIT:-0}"
"""


def _fake_lfs(tmp_path: Path) -> tuple[dict, Path]:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    lfs = bin_dir / "lfs"
    lfs.write_text(FAKE_LFS)
    lfs.chmod(lfs.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "lfs.log"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", FAKE_LFS_LOG=str(log))
    return env, log


def _calls(log: Path) -> list[tuple[list[str], str]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        *args, state = line.split("\t")
        out.append((args, state))
    return out


def _run(exe, *args, env=None):
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def _no_lfs_env(tmp_path: Path) -> dict:
    empty = tmp_path / "emptybin"
    empty.mkdir(exist_ok=True)
    return dict(os.environ, PATH=str(empty))


# --------------------------------------------------------------------------
# Python
# --------------------------------------------------------------------------

def test_plan_chunks_guide_case(zv):
    from zarr_vectors.core.plan import ChunkPlan, plan_chunks

    assert zv.package.plan_chunks is plan_chunks
    plan = plan_chunks(10**9, GUIDE_BOUNDS, {"intensity": "float32"})
    assert isinstance(plan, ChunkPlan)
    assert plan.in_band and 1e6 <= plan.bytes_per_chunk <= 4e6
    edge = plan.chunk_shape[0]
    assert edge in (500.0, 600.0)  # the guide: 10^9 points in 10 000^3 -> c ~ 585
    assert plan.chunk_shape == (edge,) * 3
    assert plan.bin_shape == (edge / 4,) * 3
    assert plan.bytes_per_chunk == pytest.approx(8 + 12 * plan.points_per_chunk)
    assert [a["cell_dir"] for a in plan.arrays] == [
        "0/vertices/c", "0/vertex_fragments/c", "0/vertex_attributes/intensity/c"]
    assert plan.grid_shape == (int(10_000 // edge) + 1,) * 3  # the bounds are inclusive
    assert plan.write_kwargs() == {"chunk_shape": plan.chunk_shape, "bin_shape": plan.bin_shape}
    assert plan.warnings == ()


def test_plan_chunks_partitions_and_kwargs(zv):
    plan = zv.package.plan_chunks(10**9, GUIDE_BOUNDS, {"intensity": np.float32, "rgb": ("uint8", 3)},
                                  partitions=20, axis="z", compressor="zstd")
    assert plan.partitions_aligned and len(plan.partitions) == 20
    assert plan.partition_axis == "z"
    edge = plan.chunk_shape[2]
    assert plan.partitions[0][0] == 0.0 and plan.partitions[-1][1] >= 10_000.0
    for (lo, hi), (lo2, _) in zip(plan.partitions, plan.partitions[1:]):
        assert hi == lo2
    for (lo, hi), layers in zip(plan.partitions, plan.partition_layers):
        assert lo / edge == int(lo / edge) and (hi - lo) == layers * edge
    assert plan.partition_kwargs(3) == {"z_range": plan.partitions[3]}
    assert plan.write_kwargs()["compressor"] == "zstd"
    assert any("upper bound" in n for n in plan.notes)
    plan_x = zv.package.plan_chunks(10**9, GUIDE_BOUNDS, partitions=4, axis=0)
    assert list(plan_x.partition_kwargs(0)) == ["x_range"]
    plan_4d = zv.package.plan_chunks(10**8, ((0, 0, 0, 0), (100, 100, 100, 100)), partitions=2, axis="t")
    kw = plan_4d.partition_kwargs(1)["bbox"]
    assert kw[0][:3] == (-math.inf,) * 3 and kw[0][3] == plan_4d.partitions[1][0]
    with pytest.raises(zv.errors.InvalidInputError, match="task 20 is not in 0..19"):
        plan.partition_kwargs(20)


@pytest.mark.parametrize("args, kwargs, message", [
    ((0, GUIDE_BOUNDS), {}, "point count must be > 0"),
    ((1.5, GUIDE_BOUNDS), {}, "count must be an int"),
    ((1000, ((0, float("nan"), 0), (1, 1, 1))), {}, "finite"),
    ((1000, ((0, 5, 0), (1, 1, 1))), {}, "inverted on axis y"),
    ((1000, ((0,), (1,))), {}, "2 to 4"),
    ((1000, "nonsense"), {}, "bounds must be"),
    ((1000, GUIDE_BOUNDS, {"i": "complex64"}), {}, "unsupported dtype 'complex64'"),
    ((1000, GUIDE_BOUNDS, {"i": "not-a-dtype"}), {}, "not a dtype"),
    ((1000, GUIDE_BOUNDS, {"a/b": "float32"}), {}, "not safe as a key component"),
    ((1000, GUIDE_BOUNDS), {"band": (4e6, 1e6)}, "not a band"),
    ((1000, GUIDE_BOUNDS), {"target": 9e6}, "outside the band"),
    ((1000, GUIDE_BOUNDS), {"occupancy": 0}, "occupancy 0"),
    ((1000, GUIDE_BOUNDS), {"axis": "q"}, "axis must be"),
    ((1000, GUIDE_BOUNDS), {"partitions": 0}, "partitions must be 1 to"),
    ((1000, GUIDE_BOUNDS), {"compressor": "lz4"}, "lz4"),
    ((1000, GUIDE_BOUNDS), {"compression_ratio": 2.0}, "without a compressor"),
])
def test_plan_chunks_bad_input(zv, args, kwargs, message):
    with pytest.raises(zv.errors.InvalidInputError, match=message):
        zv.package.plan_chunks(*args, **kwargs)


def test_planned_store_cells_land_in_the_band(zv, rng, tmp_path, zvf_cli):
    """Stripe (fake lfs), plan, write the planned partitions for real, and measure the cells on disk."""
    n = 2_000_000
    bounds = ((0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    positions = rng.uniform(0.0, 1000.0, size=(n, 3)).astype(np.float32)
    intensity = rng.uniform(0.0, 1.0, size=n).astype(np.float32)
    plan = zv.package.plan_chunks(n, bounds, {"intensity": "float32"}, partitions=2, axis="z")
    assert plan.in_band and plan.partitions_aligned

    # Stripe the empty output directory first, as a user would before the array job.
    store = tmp_path / "scan.zarrvectors"
    plan_json = tmp_path / "plan.json"
    proc = run_cli(zvf_cli, "plan", "--count", n, "--bounds", "0,0,0,1000,1000,1000",
                   "--attr", "intensity:float32", "--partitions", 2, "--axis", "z", "--json")
    assert proc.returncode == 0, proc.stderr
    plan_json.write_text(proc.stdout)
    env, log = _fake_lfs(tmp_path)
    proc = _run(zvf_cli, "stripe", store, "--plan", plan_json, "--run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(_calls(log)) == 3 and all(state == "dir" for _, state in _calls(log))

    for task in range(2):
        lo, hi = plan.partitions[task]
        mask = (positions[:, 2] >= lo) & (positions[:, 2] < hi)
        summary = zv.write_points_partition(str(store), positions[mask], attributes={"intensity": intensity[mask]},
                                            **plan.write_kwargs(), **plan.partition_kwargs(task))
        assert summary["chunks_staged"] == 0, "a planned slab edge is not a chunk edge"
    report = zv.finalise(str(store))
    assert report["vertex_count"] == n

    cells = [p for p in (store / "0" / "vertices" / "c").rglob("*") if p.is_file()]
    assert len(cells) == report["chunk_count"]
    mean = sum(p.stat().st_size for p in cells) / len(cells)
    assert 1e6 <= mean <= 4e6, f"mean vertices cell {mean / 1e6:.2f} MB is outside the 1-4 MB band"
    assert mean == pytest.approx(plan.bytes_per_chunk, rel=0.05)
    attr_cells = [p for p in (store / "0" / "vertex_attributes" / "intensity" / "c").rglob("*") if p.is_file()]
    attr_mean = sum(p.stat().st_size for p in attr_cells) / len(attr_cells)
    assert attr_mean == pytest.approx(plan.arrays[2]["mean_bytes"], rel=0.05)
    got = zv.read_points(str(store))
    assert got["vertex_count"] == n


# --------------------------------------------------------------------------
# zvf plan
# --------------------------------------------------------------------------

def test_cli_plan_matches_python_and_pastes(zv, zvf_cli):
    plan = zv.package.plan_chunks(10**9, GUIDE_BOUNDS, {"intensity": "float32"}, partitions=20, axis="z")
    proc = run_cli(zvf_cli, "plan", "--count", "1e9", "--bounds", "0,0,0,10000,10000,10000",
                   "--attr", "intensity:float32", "--partitions", "20", "--axis", "z")
    assert proc.returncode == 0, proc.stderr
    fmt = lambda v: ",".join(f"{x:g}" for x in v)  # noqa: E731
    assert f"--chunk-shape {fmt(plan.chunk_shape)} --bin-shape {fmt(plan.bin_shape)}\n" in proc.stdout
    assert f"chunk_shape={plan.chunk_shape!r}, bin_shape={plan.bin_shape!r}" in proc.stdout
    for task, (lo, hi) in enumerate(plan.partitions):
        assert f"task {task}: --z-range={lo:g},{hi:g} " in proc.stdout
    assert "zvf stripe STORE --size 4m --attr intensity" in proc.stdout or \
           "zvf stripe STORE --size 2m --attr intensity" in proc.stdout

    proc = run_cli(zvf_cli, "plan", "--count", "1_000_000_000", "--bounds", "0,0,0:10000,10000,10000",
                   "--attr", "intensity=float32", "--partitions", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    j = json.loads(proc.stdout)
    assert tuple(j["chunk_shape"]) == plan.chunk_shape and tuple(j["bin_shape"]) == plan.bin_shape
    assert j["bytes_per_chunk"] == pytest.approx(plan.bytes_per_chunk)
    assert j["partition_axis"] == "z" and len(j["partitions"]) == 20
    assert [(p["lo"], p["hi"]) for p in j["partitions"]] == list(plan.partitions)
    assert j["write_partition_args"] == ["--chunk-shape", fmt(plan.chunk_shape), "--bin-shape", fmt(plan.bin_shape)]
    assert j["warnings"] == [] and j["in_band"] is True


def test_cli_plan_options_write_a_store(zv, zvf_cli, rng, tmp_path):
    """The printed write-partition options, pasted into zvf write-partition, stage no chunk."""
    n = 300_000
    positions = rng.uniform(30.0, 230.0, size=(n, 3)).astype(np.float32)
    proc = run_cli(zvf_cli, "plan", "--count", n, "--bounds", "30,30,30,230,230,230", "--band", "100kB,400kB",
                   "--partitions", 3, "--axis", "x", "--json")
    assert proc.returncode == 0, proc.stderr
    j = json.loads(proc.stdout)
    assert j["partitions_aligned"] and j["in_band"]
    assert j["partitions"][0]["lo"] < 30 < j["partitions"][0]["hi"]  # the first slab starts on a chunk edge
    store = tmp_path / "cli.zarrvectors"
    for part in j["partitions"]:
        mask = (positions[:, 0] >= part["lo"]) & (positions[:, 0] < part["hi"])
        slab = tmp_path / f"slab{part['task']}.npy"
        np.save(slab, positions[mask])
        proc = run_cli(zvf_cli, "write-partition", store, "--input", slab, *j["write_partition_args"], part["option"])
        assert proc.returncode == 0, proc.stderr
        assert " 0 staged for finalise" in proc.stdout, proc.stdout
    assert run_cli(zvf_cli, "finalise", store).returncode == 0
    assert zv.read_points(str(store))["vertex_count"] == n


def test_cli_plan_notes_negative_chunks(zvf_cli):
    # A partitioned store's grid starts at 0: chunks below it are staged whatever the slabs.
    proc = run_cli(zvf_cli, "plan", "--count", "1e8", "--bounds=-500,0,0,1000,1000,1000", "--json")
    notes = json.loads(proc.stdout)["notes"]
    assert any("negative chunk coordinates (axis x)" in n for n in notes), notes


def test_cli_plan_warnings_and_errors(zvf_cli):
    sparse = run_cli(zvf_cli, "plan", "--count", 1000, "--bounds", "0,0,0,1e6,1e6,1e6")
    assert sparse.returncode == 0, sparse.stderr
    assert "warning: the data is too small for the band" in sparse.stdout
    dense = run_cli(zvf_cli, "plan", "--count", "1e11", "--bounds", "0,0,0,100000,1,1", "--json")
    j = json.loads(dense.stdout)
    assert any("entries in one cell directory" in w for w in j["warnings"])
    assert any("inode quota" in w for w in j["warnings"])
    few = run_cli(zvf_cli, "plan", "--count", "1e9", "--bounds", "0,0,0,10000,10000,10000", "--partitions", 64)
    assert "NOT on chunk boundaries" in few.stdout and "for 64 partitions" in few.stdout

    cases = [
        (("--count", "0", "--bounds", "0,0,0,1,1,1"), 3, "point count must be > 0"),
        (("--count", "ten", "--bounds", "0,0,0,1,1,1"), 2, "--count: expected a whole number"),
        (("--count", "10", "--bounds", "0,0,0,1,1"), 2, "--bounds: expected LO then HI"),
        (("--count", "10", "--bounds", "0,nan,0,1,1,1"), 3, "finite"),
        (("--count", "10", "--bounds", "5,0,0,1,1,1"), 3, "inverted on axis x"),
        (("--count", "10", "--bounds", "0,0,0,1,1,1", "--attr", "i:complex64"), 3, "unsupported dtype 'complex64'"),
        (("--count", "10", "--bounds", "0,0,0,1,1,1", "--attr", "intensity"), 2, "--attr: expected NAME:DTYPE"),
        (("--count", "10", "--bounds", "0,0,0,1,1,1", "--band", "4MB,1MB"), 3, "not a band"),
        (("--count", "10", "--bounds", "0,0,0,1,1,1", "--band", "4MB"), 2, "--band: expected MIN,MAX"),
        (("--count", "10", "--bounds", "0,0,0,1,1,1", "--axis", "q"), 2, "--axis: expected x, y, z or t"),
        (("--count", "10", "--bounds", "0,0,0,1,1,1", "--axis", "t"), 3, "partition axis 3 does not exist"),
        (("--bounds", "0,0,0,1,1,1"), 2, "--count is required"),
    ]
    for args, code, message in cases:
        proc = run_cli(zvf_cli, "plan", *args)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


# --------------------------------------------------------------------------
# zvf stripe
# --------------------------------------------------------------------------

def test_stripe_prints_the_commands_without_running(zvf_cli, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    proc = _run(zvf_cli, "stripe", store, "--attr", "intensity", env=_no_lfs_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"mkdir -p {store}",
        f"lfs setstripe -c 1 -S 1m {store}",
        f"mkdir -p {store}/0/vertices/c {store}/0/vertex_attributes/intensity/c",
        f"lfs setstripe -c 1 -S 4m {store}/0/vertices/c",
        f"lfs setstripe -c 1 -S 4m {store}/0/vertex_attributes/intensity/c",
    ]
    assert "lfs is not on PATH" in proc.stderr
    assert not store.exists(), "printing must not create anything"

    # The guide's layout: 8 OSTs, 4 MiB stripes; a path that needs quoting.
    odd = tmp_path / "my scan.zarrvectors"
    proc = _run(zvf_cli, "stripe", odd, "--count", "8", "--size", "4m", env=_no_lfs_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"lfs setstripe -c 8 -S 4m '{odd}/0/vertices/c'" in proc.stdout.splitlines()


def test_stripe_run_calls_lfs_with_exact_argv(zvf_cli, tmp_path, zv):
    env, log = _fake_lfs(tmp_path)
    store = tmp_path / "scan.zarrvectors"
    printed = _run(zvf_cli, "stripe", store, "--attr", "intensity", "--attr", "rgb", "--count", "8", "--size", "2048k",
                   env=env)
    assert printed.returncode == 0 and not log.exists() and not store.exists()

    proc = _run(zvf_cli, "stripe", store, "--attr", "intensity", "--attr", "rgb", "--count", "8", "--size", "2048k",
                "--run", env=env)
    assert proc.returncode == 0, proc.stderr
    s = str(store)
    assert _calls(log) == [
        (["setstripe", "-c", "1", "-S", "1m", s], "dir"),
        (["setstripe", "-c", "8", "-S", "2m", f"{s}/0/vertices/c"], "dir"),
        (["setstripe", "-c", "8", "-S", "2m", f"{s}/0/vertex_attributes/intensity/c"], "dir"),
        (["setstripe", "-c", "8", "-S", "2m", f"{s}/0/vertex_attributes/rgb/c"], "dir"),
    ]
    # --run echoes what it runs: the same lines as the printed commands.
    assert [line[2:] for line in proc.stdout.splitlines()] == printed.stdout.splitlines()

    # The pre-made directories do not bother the writers.
    pts = np.random.default_rng(1).uniform(0, 100, size=(1000, 3)).astype(np.float32)
    zv.write_points_partition(str(store), pts, chunk_shape=(50.0,) * 3, bin_shape=(12.5,) * 3,
                              attributes={"intensity": pts[:, 0].copy()}, z_range=(0, 100))
    zv.finalise(str(store))
    assert zv.read_points(str(store))["vertex_count"] == 1000


def test_stripe_sizes_from_a_plan(zvf_cli, tmp_path):
    proc = run_cli(zvf_cli, "plan", "--count", "1e9", "--bounds", "0,0,0,10000,10000,10000",
                   "--attr", "intensity:float32", "--attr", "label:uint8", "--json")
    plan_json = tmp_path / "plan.json"
    plan_json.write_text(proc.stdout)
    j = json.loads(proc.stdout)
    sizes = {a["cell_dir"]: f"{a['stripe_size'] >> 20}m" for a in j["arrays"]}
    assert sizes["0/vertices/c"] in ("2m", "4m") and sizes["0/vertex_attributes/label/c"] == "1m"
    env, log = _fake_lfs(tmp_path)
    store = tmp_path / "s.zarrvectors"
    proc = _run(zvf_cli, "stripe", store, "--plan", plan_json, "--run", env=env)
    assert proc.returncode == 0, proc.stderr
    expected = [["setstripe", "-c", "1", "-S", "1m", str(store)]] + [
        ["setstripe", "-c", "1", "-S", sizes[d], f"{store}/{d}"]
        for d in ("0/vertices/c", "0/vertex_attributes/intensity/c", "0/vertex_attributes/label/c")]
    assert [args for args, _ in _calls(log)] == expected


def test_stripe_errors(zvf_cli, tmp_path):
    store = tmp_path / "scan.zarrvectors"
    proc = _run(zvf_cli, "stripe", store, "--run", env=_no_lfs_env(tmp_path))
    assert proc.returncode == 4, proc.stderr
    assert "lfs not found on PATH" in proc.stderr
    assert not store.exists(), "nothing may be created when lfs is missing"

    env, log = _fake_lfs(tmp_path)
    env["FAKE_LFS_EXIT"] = "1"
    proc = _run(zvf_cli, "stripe", store, "--run", env=env)
    assert proc.returncode == 7, proc.stderr
    assert f"'lfs setstripe -c 1 -S 1m {store}' failed (exit status 1)" in proc.stderr
    assert len(_calls(log)) == 1, "zvf must stop at the first failed command"

    bad_plan = tmp_path / "bad.json"
    bad_plan.write_text('{"arrays": [{"name": "../x", "cell_dir": "0/vertex_attributes/../x/c", "full_bytes": 1}]}')
    cases = [
        (("s3://bucket/scan", ), 3, "not s3:// URLs"),
        ((store, "--size", "100k"), 3, "multiple of 64k"),
        ((store, "--size", "four"), 2, "--size: expected a stripe size"),
        ((store, "--count", "0"), 3, "1 to 2000, or -1"),
        ((store, "--attr", "../x"), 3, "not a valid attribute name"),
        ((store, "--plan", tmp_path / "missing.json"), 4, "cannot read plan file"),
        ((store, "--plan", bad_plan), 3, "not a valid attribute name"),
    ]
    for args, code, message in cases:
        proc = _run(zvf_cli, "stripe", *args, env=_no_lfs_env(tmp_path))
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


def test_help_has_examples(zvf_cli):
    for command in ("plan", "stripe"):
        proc = run_cli(zvf_cli, command, "--help")
        assert proc.returncode == 0
        assert "Examples:" in proc.stdout and f"zvf {command} " in proc.stdout
    top = run_cli(zvf_cli, "--help").stdout
    assert "plan" in top and "stripe" in top
