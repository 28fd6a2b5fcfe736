"""The benchmark suite runs end to end at tiny size, so that it cannot rot.

One real run of ``bench/run_all.py --size tiny --repeat 1`` (our package, the
reference zarr-vectors 0.9.2 in its own venv, mpirun with 1 and 2 ranks),
then checks of what it wrote: the JSON keys each benchmark promises, every
measurement finite and positive with its samples, the targets, the plots.
No timing is asserted: the numbers are whatever this machine gives.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

RUN_ALL = REPO_ROOT / "bench" / "run_all.py"
BENCHMARKS = ["points", "zstd", "chunks", "query", "pyramid", "memory", "mpi"]


@pytest.fixture(scope="module")
def tiny_run(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    work = tmp_path_factory.mktemp("bench-work")
    proc = subprocess.run(
        [sys.executable, str(RUN_ALL), "--size", "tiny", "--repeat", "1", "--out-dir", str(out),
         "--workdir", str(work), "--ref-python", str(reference.python)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"run_all.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    with open(out / "results.json") as f:
        results = json.load(f)
    return {"dir": out, "work": work, "results": results, "stdout": proc.stdout}


def measurements_in(node, path="") -> list[tuple[str, dict]]:
    """Every measurement dict (one with "samples") under node, with where it was."""
    if isinstance(node, dict):
        if "samples" in node:
            return [(path, node)]
        return [m for k, v in node.items() for m in measurements_in(v, f"{path}/{k}")]
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in measurements_in(v, f"{path}[{i}]")]
    return []


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_machine_and_versions_are_recorded(tiny_run):
    r = tiny_run["results"]
    assert r["size"] == "tiny" and r["repeat"] == 1
    m = r["machine"]
    assert m["cpu_model"] and m["cores"] >= 1 and m["ram_gib"] > 0 and m["kernel"]
    assert m["bench_dir_filesystem"]["type"] not in ("", "?")
    v = r["versions"]
    assert v["zarr_vectors_reference"] == "0.9.2"
    for key in ("numpy", "zarr", "zarr_vectors_ours", "zstandard", "matplotlib"):
        assert v[key], f"version of {key} missing: {v}"


def test_every_benchmark_ran_with_finite_positive_measurements(tiny_run):
    bench = tiny_run["results"]["benchmarks"]
    assert sorted(bench) == sorted(BENCHMARKS)
    for name in BENCHMARKS:
        assert "skipped" not in bench[name], f"{name} was skipped: {bench[name].get('skipped')}"
        found = measurements_in(bench[name])
        assert found, f"{name} has no measurements"
        for where, m in found:
            assert m["n"] == len(m["samples"]) >= 1, f"{name}{where}: {m}"
            for key in ("median", "min", "max", "p90"):
                assert finite(m[key]) and m[key] > 0, f"{name}{where}: {key} = {m[key]}"
            assert all(finite(s) and s > 0 for s in m["samples"]), f"{name}{where}: {m['samples']}"
            assert m["min"] <= m["median"] <= m["max"], f"{name}{where}: {m}"


def test_each_benchmark_compares_what_it_promises(tiny_run):
    b = tiny_run["results"]["benchmarks"]
    sizes = b["points"]["by_size"]
    assert sorted(map(int, sizes)) == [2_000, 5_000]
    for row in sizes.values():
        assert {"tofile", "files_alone", "copy", "fromfile", "write", "write_4_partitions", "read_all", "ref_write",
                "ref_read_all"} <= set(row)
    for key in ("write_fraction_of_tofile", "files_alone_fraction_of_tofile",
                "files_alone_and_copy_fraction_of_tofile", "read_all_fraction_of_fromfile",
                "write_speedup_vs_reference"):
        assert finite(b["points"]["derived"][key]) and b["points"]["derived"][key] > 0

    z = b["zstd"]
    assert set(z["measurements"]) >= {"write_zstd", "zstd_alone_all_cores", "write_none"}
    assert z["params"]["cells"] > 0 and z["params"]["payload_bytes"] > 0
    # The same bytes compressed with the same settings give (nearly) the same total size.
    assert 0.9 < z["derived"]["zstd_compressed_size_ratio_ours_vs_alone"] < 1.1

    c = b["chunks"]
    assert [m["chunks"] for m in c["ours"].values()] == [8, 64, 125]
    assert [m["chunks"] for m in c["reference"].values()] == [8, 64]
    assert [m["chunks"] for m in c["files_alone"].values()] == [8, 64, 125]
    for side in ("ours", "reference", "files_alone"):
        assert finite(c["derived"][side]["b_us_per_chunk"]), c["derived"]

    q = b["query"]
    assert q["params"]["points_returned"] > 0
    assert {"ours_python", "ours_cli_process", "reference_python"} <= set(q["measurements"])

    p = b["pyramid"]
    assert {"ours_build", "reference_build"} <= set(p["measurements"])
    assert p["params"]["source_written_by"] == "reference" and len(p["params"]["levels_vertex_count"]) == 2
    assert all(row["peak_rss_kib"] >= row["baseline_kib"] > 0 for row in p["rss"])

    mem = b["memory"]
    assert mem["params"]["input_bytes"] == 5_000 * 16
    assert mem["measurements"]["peak_rss"]["median"] >= mem["measurements"]["baseline_rss"]["median"]

    mpi = b["mpi"]
    assert sorted(mpi["by_ranks"]) == ["1", "2"]
    assert finite(mpi["derived"]["throughput_ratio"]) and mpi["derived"]["throughput_ratio"] > 0


def test_targets_tables_and_plots(tiny_run):
    targets = tiny_run["results"]["targets"]
    whats = " ".join(t["what"] for t in targets)
    for word in ("tofile", "fromfile", "zstd", "per chunk", "bbox", "build_pyramid", "peak RSS", "MPI"):
        assert word in whats, f"no target about {word!r}: {whats}"
    assert all(isinstance(t["met"], bool) and finite(t["measured"]) for t in targets)
    tables = (tiny_run["dir"] / "tables.md").read_text()
    assert tables in tiny_run["stdout"] and "### Issue 6 targets" in tables
    for name in ("scaling_chunks.png", "scaling_points.png", "mpi_ranks.png"):
        with open(tiny_run["dir"] / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
    assert sorted(tiny_run["results"]["plots"]) == ["mpi_ranks.png", "scaling_chunks.png", "scaling_points.png"]
    # Nothing is left behind in the measured directory.
    assert [p.name for p in tiny_run["work"].iterdir()] == []


def test_bad_arguments_are_named():
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--only", "points,nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "nope" in proc.stderr and "points" in proc.stderr
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--repeat", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--repeat must be at least 1, got 0" in proc.stderr


def test_line_fit_and_quantile():
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import _common

    a, b = _common.fit_line([8, 64, 512, 8000], [0.1 + 2e-5 * x for x in (8, 64, 512, 8000)])
    assert a == pytest.approx(0.1) and b == pytest.approx(2e-5)
    assert _common.quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)
    with pytest.raises(ValueError, match="two distinct x"):
        _common.fit_line([5, 5], [1, 2])


def test_machine_memory_probe_runs(tmp_path):
    out = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "machine_memory.py"), "--mb", "4", "--pauses", "0,0.05",
         "--repeat", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| 0.05 |" in proc.stdout
    data = json.loads(out.read_text())
    assert data["bytes"] == 4_000_000
    assert set(data["samples_s"]) == {"0.0", "0.05"}
    assert all(len(v) == 2 and all(finite(x) and x > 0 for x in v) for v in data["samples_s"].values())


def test_machine_memory_probe_refuses_bad_pauses():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "machine_memory.py"), "--pauses", "0,soon"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "'0,soon'" in proc.stderr
