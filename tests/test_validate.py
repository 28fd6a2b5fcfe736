"""zvf validate (CLI) and zarr_vectors.validate.validate against the reference validator.

Stores written by us and by the reference (zarr-vectors 0.9.2, each with a two-level
pyramid) are damaged in targeted ways; for every damage and every level 1..5 our
verdict (valid or not) must equal the reference validator's, run in its own venv.
Where we are deliberately stricter (the reference misses damage its own reader
trips over) the test says so case by case, and checks that the reference still
passes the store, so a change on either side shows up.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import _subprocess_env
from helpers import run_cli

ORACLE_DIR = Path(__file__).resolve().parent / "oracle"
CHUNK = (500.0, 500.0, 500.0)
BIN = (125.0, 125.0, 125.0)
FACTORS = [(2.0, 1.0), (2.0, 1.0)]
LEVELS = (1, 2, 3, 4, 5)
EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CORRUPT = 2, 4, 5


# ----------------------------------------------------------------- damage

def _jload(p: Path) -> dict:
    return json.loads(p.read_text())


def _jsave(p: Path, d: dict) -> None:
    p.write_text(json.dumps(d, indent=1))


def _cell(store: Path, array: str, index: int = 0) -> Path:
    """Path of the index-th listed cell of an array (e.g. "0/vertices")."""
    attrs = _jload(store / array / "zarr.json")["attributes"]
    key = sorted(attrs["nonempty_chunks"])[index].split(".")
    origin = attrs.get("chunk_grid_origin", [0] * len(key))
    return store.joinpath(array, "c", *(str(int(k) - o) for k, o in zip(key, origin)))


def _edit_fragments(store: Path, delta: int) -> None:
    """Changes the row count of the last non-empty range of the first fragment index."""
    p = _cell(store, "0/vertex_fragments")
    raw = bytearray(p.read_bytes())
    payload = raw[8:]  # uncompressed vlen-bytes frame: u32 count, u32 length, payload
    _, _, _, nfrag, nrange = struct.unpack_from("<IHHII", payload, 0)
    table = 16 + ((nfrag + 7) // 8 + 7) // 8 * 8
    for r in reversed(range(nrange)):
        start, count = struct.unpack_from("<qq", payload, table + 16 * r)
        if count > 0:
            struct.pack_into("<qq", payload, table + 16 * r, start, count + delta)
            break
    p.write_bytes(bytes(raw[:8]) + bytes(payload))


def delete_vertex_cell(s):
    _cell(s, "0/vertices").unlink()


def truncate_vertex_cell(s):
    p = _cell(s, "0/vertices")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def delete_fragment_cell(s):
    _cell(s, "0/vertex_fragments").unlink()


def fragment_index_short(s):
    _edit_fragments(s, -1)


def fragment_index_long(s):
    _edit_fragments(s, +4)


def position_dtype_float64(s):
    d = _jload(s / "0/vertices/zarr.json")
    d["attributes"]["dtype"] = "float64"
    _jsave(s / "0/vertices/zarr.json", d)


def break_array_json(s):
    (s / "0/vertices/zarr.json").write_text("{not json")


def break_level_json(s):
    (s / "0/zarr.json").write_text("{not json")


def break_root_json(s):
    (s / "zarr.json").write_text('{"attributes": ')


def drop_zarr_vectors_block(s):
    d = _jload(s / "zarr.json")
    del d["attributes"]["zarr_vectors"]
    _jsave(s / "zarr.json", d)


def bin_not_dividing_chunk(s):
    d = _jload(s / "zarr.json")
    d["attributes"]["zarr_vectors"]["base_bin_shape"] = [300.0, 125.0, 125.0]
    _jsave(s / "zarr.json", d)


def unknown_links_convention(s):
    d = _jload(s / "zarr.json")
    d["attributes"]["zarr_vectors"]["links_convention"] = "bogus"
    _jsave(s / "zarr.json", d)


def missing_vertices_array(s):
    shutil.rmtree(s / "0/vertices")


def missing_fragments_array(s):
    shutil.rmtree(s / "0/vertex_fragments")


def missing_level_1(s):
    shutil.rmtree(s / "1")


def level_gap(s):
    (s / "2").rename(s / "3")


def nan_position(s):
    p = _cell(s, "0/vertices")
    raw = bytearray(p.read_bytes())
    struct.pack_into("<f", raw, 8, float("nan"))
    p.write_bytes(bytes(raw))


def orphan_cell(s):
    src = _cell(s, "0/vertices")
    dst = s / "0/vertices/c/9/9/9"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)


def pending_partition(s):
    d = s / ".zvf/partitions/z_0_600"
    d.mkdir(parents=True)
    (d / "started.json").write_text(json.dumps(
        {"id": "z_0_600", "run_id": "00000000deadbeef", "range": [[None, None, 0.0], [None, None, 600.0]]}))


def temp_file(s):
    p = _cell(s, "0/vertices")
    p.with_name(p.name + ".0badc0de.zvftmp").write_bytes(b"partial")


def delete_attribute_cell(s):
    _cell(s, "0/vertex_attributes/intensity").unlink()


def wrong_vertex_count(s):
    d = _jload(s / "0/zarr.json")
    d["attributes"]["zarr_vectors_level"]["vertex_count"] += 7
    _jsave(s / "0/zarr.json", d)


def delete_coarse_cell(s):
    _cell(s, "1/vertices").unlink()


# (damage, the finding we report for it, stricter_from). stricter_from is None when our
# verdict equals the reference's at every level; k when we find errors from level k on
# that the reference does not report (it still passes the store).
CASES = {
    "clean": (None, None, None),
    "delete_vertex_cell": (delete_vertex_cell, "vertices cell is missing", None),
    "truncate_vertex_cell": (truncate_vertex_cell, "does not decode", None),
    "delete_fragment_cell": (delete_fragment_cell, "fragment index cell is missing", None),
    "fragment_index_short": (fragment_index_short, "do not tile", None),
    "fragment_index_long": (fragment_index_long, "but the cell has", None),
    "position_dtype_float64": (position_dtype_float64, "but the cell has", None),
    "break_array_json": (break_array_json, "not valid JSON", None),
    "break_level_json": (break_level_json, "not valid JSON", None),
    "break_root_json": (break_root_json, "not valid JSON", None),
    "drop_zarr_vectors_block": (drop_zarr_vectors_block, "'zarr_vectors'", None),
    "bin_not_dividing_chunk": (bin_not_dividing_chunk, "not a whole multiple of base_bin_shape", None),
    "unknown_links_convention": (unknown_links_convention, "unknown links_convention", None),
    "missing_vertices_array": (missing_vertices_array, "missing (no zarr.json)", None),
    "missing_fragments_array": (missing_fragments_array, "vertex_fragments array is missing", None),
    "missing_level_1": (missing_level_1, "publishes level 1", None),
    "level_gap": (level_gap, "expected [0, 1, 2]", None),
    # Warnings only: both validators pass the store.
    "nan_position": (nan_position, "NaN or infinite", None),
    "orphan_cell": (orphan_cell, "orphan cell", None),
    "pending_partition": (pending_partition, "is pending", None),
    "temp_file": (temp_file, "temporary file", None),
    # Stricter than the reference:
    # - it never reads attribute cells, so a lost one goes unnoticed (its reader then fails);
    # - it looks for vertex_count at the wrong depth of the level attributes, so never compares it;
    # - it reads a missing cell of a level without fragments_tile as an empty chunk.
    "delete_attribute_cell": (delete_attribute_cell, "attribute cell is missing", 3),
    "wrong_vertex_count": (wrong_vertex_count, "vertex_count", 3),
    "delete_coarse_cell": (delete_coarse_cell, "vertices cell is missing", 3),
}
KINDS = ("ours", "reference")


# ----------------------------------------------------------------- stores and verdicts

def _ref_pyramid(reference, store: Path) -> None:
    cmd = [str(reference.python), "-I", str(ORACLE_DIR / "ref_pyramid.py"), str(store)]
    cmd += [f"--factors={c!r},{s!r}" for c, s in FACTORS]
    proc = subprocess.run(cmd, env=_subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"reference build_pyramid failed:\n{proc.stderr[-4000:]}"


def reference_verdicts(reference, stores: list[Path], levels=LEVELS) -> dict:
    """{str(store): {level: {"ok", "errors", "warnings"}}} from the reference validator."""
    cmd = [str(reference.python), "-I", str(ORACLE_DIR / "ref_validate.py"),
           "--levels=" + ",".join(map(str, levels)), *map(str, stores)]
    proc = subprocess.run(cmd, env=_subprocess_env(), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"reference validator failed to run:\n{proc.stderr[-4000:]}"
    return {k: {int(lv): v for lv, v in per.items()} for k, per in json.loads(proc.stdout).items()}


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(2024)
    positions = rng.uniform(0, 1000, (4000, 3)).astype(np.float32)
    return positions, {"intensity": rng.uniform(0, 1, 4000).astype(np.float32)}


@pytest.fixture(scope="module")
def base_stores(tmp_path_factory, zv, reference, cloud):
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    d = tmp_path_factory.mktemp("validate-base")
    ours, theirs = d / "ours.zarrvectors", d / "ref.zarrvectors"
    zv.write_points(ours, cloud[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=cloud[1])
    build_pyramid(ours, FACTORS)
    reference.write(theirs, cloud[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=cloud[1])
    _ref_pyramid(reference, theirs)
    return {"ours": ours, "reference": theirs}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, base_stores, reference):
    """Every case applied to a copy of each base store, with the reference's verdicts."""
    d = tmp_path_factory.mktemp("validate-damaged")
    stores = {}
    for kind in KINDS:
        for name, (damage, _, _) in CASES.items():
            path = d / f"{kind}-{name}.zarrvectors"
            shutil.copytree(base_stores[kind], path)
            if damage:
                damage(path)
            stores[kind, name] = path
    verdicts = reference_verdicts(reference, list(stores.values()))
    return {key: (path, verdicts[str(path)]) for key, path in stores.items()}


# ----------------------------------------------------------------- verdicts agree

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_verdict_matches_the_reference_at_every_level(damaged, kind, case):
    from zarr_vectors.validate import validate

    path, theirs = damaged[kind, case]
    _, needle, stricter_from = CASES[case]
    for level in LEVELS:
        ours = validate(path, level=level)
        assert ours.level == level
        want = theirs[level]["ok"] if stricter_from is None or level < stricter_from else False
        if stricter_from is not None and level >= stricter_from:
            assert theirs[level]["ok"], (
                f"{case}: the reference now rejects this store at level {level}; drop the 'stricter' mark:\n"
                + "\n".join(theirs[level]["errors"]))
        assert ours.ok == want, (
            f"{kind} store, {case}, level {level}: ours says {'valid' if ours.ok else 'invalid'}, "
            f"expected {'valid' if want else 'invalid'}\n"
            f"ours:\n{ours.summary()}\nreference errors:\n" + "\n".join(theirs[level]["errors"]))
    # At the deepest level, our report names the damage.
    report = validate(path, level=5)
    if needle is None:
        assert report.findings == [], report.summary()
    else:
        assert any(needle in f.message for f in report.findings), f"{case}: no finding with {needle!r}:\n" + report.summary()


def test_missing_level_1_is_found_at_level_5_only(damaged):
    from zarr_vectors.validate import validate

    path, _ = damaged["ours", "missing_level_1"]
    assert validate(path, level=4).ok
    errors = [f for f in validate(path, level=5).findings if f.severity == "error"]
    assert errors and all(f.level == 5 for f in errors), errors


# ----------------------------------------------------------------- partitions

def test_partitioned_store_before_and_after_finalise(zv, reference, cloud, tmp_path):
    from zarr_vectors.validate import validate

    store = tmp_path / "parts.zarrvectors"
    z = cloud[0][:, 2]
    for lo, hi in ((0.0, 600.0), (600.0, 1000.0)):
        sel = (z >= lo) & (z < hi)
        zv.write_points_partition(store, cloud[0][sel], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes={"intensity": cloud[1]["intensity"][sel]}, z_range=(lo, hi))
    before = validate(store, level=3)
    assert not before.ok and any("not finalised" in e for e in before.errors), before.summary()
    zv.finalise(store)
    after = validate(store, level=5)
    assert after.ok and after.findings == [], after.summary()
    # A re-run of one slab killed mid-write: started.json of a new run, no manifest.
    sel = z < 600.0
    zv.write_points_partition(store, cloud[0][sel], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={"intensity": cloud[1]["intensity"][sel]}, z_range=(0.0, 600.0))
    (store / ".zvf/partitions/z_0_600/manifest.json").unlink()
    killed = validate(store, level=3)
    assert killed.ok, killed.summary()
    assert [f.key for f in killed.findings if "is pending" in f.message] == [".zvf/partitions/z_0_600"]

    theirs = reference_verdicts(reference, [store], levels=(3,))[str(store)][3]
    assert theirs["ok"] == killed.ok, theirs


# ----------------------------------------------------------------- Python API

def test_result_mirrors_the_reference_shape(damaged):
    from zarr_vectors.validate import ValidationResult, validate

    path, _ = damaged["ours", "delete_vertex_cell"]
    r = validate(path)
    assert isinstance(r, ValidationResult) and r.level == 3 and not r.ok
    assert r.errors and all(isinstance(e, str) for e in r.errors)
    assert r.summary().startswith("Level 3 validation: FAIL")
    f = next(f for f in r.findings if f.severity == "error")
    assert f.level == 3 and f.key.startswith("0/vertices/c/") and f.key in r.errors[0]
    assert r.to_dict()["findings"][0]["key"] == r.findings[0].key
    assert r.passed, "checks that passed are listed too"


def test_bad_arguments_raise_the_package_errors(zv, errors, base_stores, tmp_path):
    from zarr_vectors import validate_store
    from zarr_vectors.validate import validate

    assert validate_store is validate
    with pytest.raises(errors.StoreNotFoundError, match="no store at"):
        validate(tmp_path / "nothing-here.zarrvectors")
    with pytest.raises(FileNotFoundError):
        validate(tmp_path / "nothing-here.zarrvectors")
    for bad in (0, 6, "3", 2.0, True):
        with pytest.raises(errors.InvalidInputError, match="level"):
            validate(base_stores["ours"], level=bad)
    with pytest.raises(errors.InvalidInputError, match="store path"):
        validate(None)


def test_empty_directory_is_invalid_not_an_exception(tmp_path):
    from zarr_vectors.validate import validate

    (tmp_path / "empty.zarrvectors").mkdir()
    r = validate(tmp_path / "empty.zarrvectors", level=1)
    assert not r.ok and r.findings[0].key == "zarr.json"


# ----------------------------------------------------------------- CLI

def test_cli_valid_store_exits_0(zvf_cli, base_stores):
    for kind in KINDS:
        proc = run_cli(zvf_cli, "validate", base_stores[kind], "--level", "5")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "valid: 0 error(s)" in proc.stdout
        assert proc.stderr == "", "no progress on stderr when it is not a terminal"


def test_cli_invalid_store_exits_5_with_the_same_findings_as_python(zvf_cli, damaged):
    from zarr_vectors.validate import validate

    path, _ = damaged["reference", "truncate_vertex_cell"]
    proc = run_cli(zvf_cli, "validate", path, "--json")
    assert proc.returncode == EXIT_CORRUPT, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] is False and report["level"] == 3 and report["errors"] >= 1
    assert "zvf: error:" in proc.stderr and "not a valid ZV store" in proc.stderr
    py = validate(path).to_dict()["findings"]
    assert report["findings"] == py

    text = run_cli(zvf_cli, "validate", path)
    assert text.returncode == EXIT_CORRUPT
    key = next(f["key"] for f in py if f["severity"] == "error")
    assert any(line.startswith("ERROR") and key in line for line in text.stdout.splitlines()), text.stdout


def test_cli_warnings_keep_exit_0(zvf_cli, damaged):
    path, _ = damaged["ours", "pending_partition"]
    proc = run_cli(zvf_cli, "validate", path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] is True and report["warnings"] >= 1
    assert {"level": 1, "severity": "warning", "key": ".zvf/partitions/z_0_600"}.items() <= next(
        f for f in report["findings"] if "pending" in f["message"]).items()


def test_cli_missing_store_and_usage_errors(zvf_cli, base_stores, tmp_path):
    proc = run_cli(zvf_cli, "validate", tmp_path / "absent.zarrvectors")
    assert proc.returncode == EXIT_NOT_FOUND and "no store at" in proc.stderr
    for args in (["--level", "0"], ["--level", "6"], ["--level", "x"], ["--bogus"]):
        proc = run_cli(zvf_cli, "validate", base_stores["ours"], *args)
        assert proc.returncode == EXIT_USAGE, (args, proc.stderr)
    proc = run_cli(zvf_cli, "validate")
    assert proc.returncode == EXIT_USAGE
    help_text = run_cli(zvf_cli, "validate", "--help")
    assert help_text.returncode == 0 and "Examples:" in help_text.stdout and "--level" in help_text.stdout
    assert "validate" in run_cli(zvf_cli, "--help").stdout
