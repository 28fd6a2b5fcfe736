"""Multi-resolution pyramids: ``build_pyramid``, ``select_level`` and ``zvf pyramid``.

What is checked (issue 4):

* exactness: level k holds one metavertex per non-empty bin of size
  ``base_bin * 2**k`` at the mean of its level-0 points, a ``count`` equal to
  the number of those points, and attributes carried down by the documented
  reductions (float: mean; integer: mode, smallest on ties; or mean rounded,
  min, max, first, mode when chosen), all recomputed here in numpy;
* chunk growth (automatic per-level chunk_shape override, chunk_scale_factors);
* interoperability with zarr-vectors 0.9.2 both ways, and its validator at level 5;
* NGFF / RFC 8 / level metadata; bbox reads and ``select_level`` on every level;
* atomicity and idempotence: re-runs, overwrite, a build killed with SIGKILL;
* scale-out with plain processes (``part=``, ``finalise_parts=``);
* consolidated metadata, staleness after re-finalisation, bad input and the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import _subprocess_env
from helpers import (
    run_cli,
    all_of,
    assert_same_multiset,
    bbox_mask,
    diff_trees,
    list_files,
    select,
    tree_digest,
    uniform_points,
)

CHUNK = (40.0, 40.0, 40.0)
BIN = (10.0, 10.0, 10.0)
FACTORS = [(2.0, 1.0), (2.0, 1.0), (2.0, 1.0)]  # bins 20, 40, 80; level 3 outgrows the 40 chunk
N_UNIFORM = 3000
ORACLE_PYRAMID = Path(__file__).resolve().parent / "oracle" / "ref_pyramid.py"


# --------------------------------------------------------------------------
# Data and expectations computed in numpy
# --------------------------------------------------------------------------

def make_cloud(seed: int = 7, n: int = N_UNIFORM):
    """Random float32 points in (-100, 100)^3 with a float, an int and an (N, 3)
    uint8 attribute, plus two isolated clusters whose bins hold equal values at
    every level (so 'first' has a known answer in multi-point bins)."""
    rng = np.random.default_rng(seed)
    pos = uniform_points(rng, n, (-100.0,) * 3, (100.0,) * 3)
    f = rng.standard_normal(n).astype(np.float32)
    label = rng.integers(-3, 4, n).astype(np.int32)
    rgb = rng.choice(np.array([0, 7, 128, 255], dtype=np.uint8), size=(n, 3))
    c1 = uniform_points(rng, 12, (170.0,) * 3, (175.0,) * 3)
    c2 = uniform_points(rng, 9, (-180.0,) * 3, (-175.0,) * 3)
    pos = np.concatenate([pos, c1, c2])
    f = np.concatenate([f, np.full(12, 1.5, np.float32), np.full(9, -0.25, np.float32)])
    label = np.concatenate([label, np.full(12, 7, np.int32), np.full(9, -2, np.int32)])
    rgb = np.concatenate([rgb, np.tile(np.array([9, 9, 9], np.uint8), (12, 1)),
                          np.tile(np.array([200, 3, 77], np.uint8), (9, 1))])
    return pos, {"f": f, "label": label, "rgb": rgb}


def exact_bins(p64: np.ndarray, bin_shape) -> np.ndarray:
    """floor(p / bin), corrected so that b * bin <= p < (b + 1) * bin holds exactly."""
    bs = np.asarray(bin_shape, dtype=np.float64)
    b = np.floor(p64 / bs)
    b = np.where(b * bs > p64, b - 1, b)
    b = np.where((b + 1) * bs <= p64, b + 1, b)
    return b.astype(np.int64)


def level_bin(k: int) -> tuple[float, ...]:
    return tuple(b * 2.0 ** k for b in BIN)


def group_bins(pos: np.ndarray, bin_shape):
    """(sorted unique bin keys, counts, [point indices of each bin in input order])."""
    keys = exact_bins(pos.astype(np.float64), bin_shape)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    counts = np.bincount(inv, minlength=len(uniq))
    order = np.argsort(inv, kind="stable")
    groups = np.split(order, np.cumsum(counts)[:-1])
    return uniq, counts, groups


def match_to_bins(actual_pos: np.ndarray, uniq: np.ndarray, bin_shape, what: str) -> np.ndarray:
    """Row order of the actual metavertices that lines them up with ``uniq``.

    A bin mean lies between the bin's smallest and largest float32 coordinates,
    so its float32 rounding stays in the bin: the actual bin keys must be
    exactly the expected ones, once each."""
    keys = exact_bins(actual_pos.astype(np.float64), bin_shape)
    order = np.lexsort(keys.T[::-1])
    got = keys[order]
    if got.shape != uniq.shape or not np.array_equal(got, uniq):
        got_set = {tuple(r) for r in got.tolist()}
        exp_set = {tuple(r) for r in uniq.tolist()}
        raise AssertionError(
            f"{what}: metavertices are not one per non-empty bin: {len(got)} metavertices in "
            f"{len(got_set)} bins, expected {len(uniq)} bins; bins missing {sorted(exp_set - got_set)[:5]}, "
            f"unexpected {sorted(got_set - exp_set)[:5]}"
        )
    return order


def mode_smallest(values: np.ndarray):
    vals, cnts = np.unique(values, return_counts=True)
    return vals[np.argmax(cnts)]  # first maximum = smallest value among the most frequent


def expected_reduction(values: np.ndarray, groups, reduction: str) -> np.ndarray:
    """Per bin (and per channel), the expected carried-down value; float64 for
    means of floats, else the attribute's dtype."""
    v2 = values.reshape(len(values), -1)
    out = []
    for g in groups:
        col = v2[g]
        if reduction == "mean":
            m = col.astype(np.float64).mean(axis=0)
            out.append(m if np.issubdtype(values.dtype, np.floating) else np.rint(m))
        elif reduction == "min":
            out.append(col.min(axis=0))
        elif reduction == "max":
            out.append(col.max(axis=0))
        elif reduction == "mode":
            out.append(np.array([mode_smallest(col[:, c]) for c in range(col.shape[1])]))
        else:
            raise ValueError(reduction)
    arr = np.array(out)
    if not (reduction == "mean" and np.issubdtype(values.dtype, np.floating)):
        arr = arr.astype(values.dtype)
    return arr.reshape((len(groups),) + values.shape[1:])


def read_level(zv, path, level=0, bbox=None):
    r = zv.read_points(str(path), level=level, bbox=bbox)
    return np.asarray(r["positions"]), {k: np.asarray(v) for k, v in r["attributes"].items()}


def root_json(path: Path) -> dict:
    return json.loads((Path(path) / "zarr.json").read_text())


def level_json(path: Path, k: int) -> dict:
    return json.loads((Path(path) / str(k) / "zarr.json").read_text())


def dataset_paths(path: Path) -> list[str]:
    return [d["path"] for d in root_json(path)["attributes"]["multiscales"][0]["datasets"]]


def level_dirs(path: Path) -> list[str]:
    return sorted(p.name for p in Path(path).iterdir() if p.is_dir() and p.name.isdigit())


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud():
    return make_cloud()


@pytest.fixture(scope="module")
def base_store(zv, cloud, tmp_path_factory) -> Path:
    """A finalised one-shot store of ``cloud`` (never modified: copy it)."""
    path = tmp_path_factory.mktemp("pyr-base") / "store.zarrvectors"
    zv.write_points(str(path), cloud[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=cloud[1])
    return path


@pytest.fixture(scope="module")
def pyramid_store(zv, base_store, tmp_path_factory) -> Path:
    """``base_store`` with levels 1..3 built by FACTORS (never modified)."""
    path = tmp_path_factory.mktemp("pyr-built") / "store.zarrvectors"
    shutil.copytree(base_store, path)
    zv.package.build_pyramid(str(path), FACTORS)
    return path


@pytest.fixture
def fresh(base_store, tmp_path):
    """Factory of private copies of ``base_store``."""
    made = []

    def make(name: str = "copy") -> Path:
        path = tmp_path / name / "store.zarrvectors"
        path.parent.mkdir(parents=True)
        shutil.copytree(base_store, path)
        made.append(path)
        return path

    return make




# --------------------------------------------------------------------------
# Exactness
# --------------------------------------------------------------------------

def _check_level(zv, path, cloud, k, reductions: dict[str, str]):
    pos0, attrs0 = cloud
    bin_k = level_bin(k)
    uniq, counts, groups = group_bins(pos0, bin_k)
    pos, attrs = read_level(zv, path, k)
    what = f"level {k} (bin {bin_k[0]:g})"
    assert pos.dtype == np.float32, f"{what}: positions are {pos.dtype}"
    assert sorted(attrs) == ["count", "f", "label", "rgb"], f"{what}: attributes {sorted(attrs)}"
    order = match_to_bins(pos, uniq, bin_k, what)

    # Positions: per-bin mean of the level-0 points, in float64, then float32 rounding.
    sums = np.zeros((len(uniq), 3))
    inv = np.empty(len(pos0), dtype=np.int64)
    for i, g in enumerate(groups):
        inv[g] = i
    np.add.at(sums, inv, pos0.astype(np.float64))
    means = sums / counts[:, None]
    np.testing.assert_allclose(pos[order].astype(np.float64), means, rtol=2.5e-7, atol=1e-6,
                               err_msg=f"{what}: positions are not the per-bin means of level 0")

    cnt = attrs["count"]
    assert cnt.dtype == np.uint64 and cnt.shape == (len(pos),), f"{what}: count is {cnt.dtype}{cnt.shape}"
    assert np.array_equal(cnt[order], counts), f"{what}: count differs from the per-bin point counts"
    assert int(cnt.sum()) == len(pos0), f"{what}: counts sum to {int(cnt.sum())}, not N = {len(pos0)}"

    for name in ("f", "label", "rgb"):
        got = attrs[name][order]
        src = attrs0[name]
        assert got.dtype == src.dtype and got.shape[1:] == src.shape[1:], (
            f"{what}: attribute {name} is {got.dtype}{got.shape}, level 0 is {src.dtype}{src.shape}")
        red = reductions[name]
        if red == "first":
            continue  # checked jointly below
        exp = expected_reduction(src, groups, red)
        if red == "mean" and np.issubdtype(src.dtype, np.floating):
            np.testing.assert_allclose(got.astype(np.float64), exp, rtol=2.5e-7, atol=1e-7,
                                       err_msg=f"{what}: {name} is not the per-bin mean")
        else:
            bad = np.nonzero(np.any((got != exp).reshape(len(got), -1), axis=1))[0]
            assert len(bad) == 0, (
                f"{what}: {name} ({red}) differs in {len(bad)} of {len(got)} bins; first: bin {uniq[bad[0]].tolist()} "
                f"values {src[groups[bad[0]]].tolist()} -> got {got[bad[0]].tolist()}, expected {exp[bad[0]].tolist()}")

    firsts = [n for n in ("f", "label", "rgb") if reductions[n] == "first"]
    if firsts:
        uniform_bins = 0
        for i, g in enumerate(groups):
            rows = {tuple(np.concatenate([np.atleast_1d(attrs0[n][j]).astype(np.float64) for n in firsts]))
                    for j in g}
            got_row = tuple(np.concatenate([np.atleast_1d(attrs[n][order][i]).astype(np.float64) for n in firsts]))
            # 'first' takes every attribute from one point: the first of the bin in storage order.
            assert got_row in rows, (f"{what}: 'first' gave {got_row} for bin {uniq[i].tolist()}, "
                                     f"which is no point of that bin ({len(g)} points)")
            if len(rows) == 1 and len(g) > 1:
                uniform_bins += 1
        assert uniform_bins > 0, f"{what}: test data has no multi-point bin with equal values"


@pytest.mark.parametrize("reduction", [None, "mean", "min", "max", "first", "mode"])
def test_levels_are_exact_bin_reductions(zv, cloud, fresh, reduction):
    path = fresh()
    if reduction is None:
        given = None
        used = {"f": "mean", "label": "mode", "rgb": "mode"}
    elif reduction == "mode":  # mode applies to integer attributes only
        given = {"label": "mode", "rgb": "mode"}
        used = {"f": "mean", "label": "mode", "rgb": "mode"}
    else:
        given = {"f": reduction, "label": reduction, "rgb": reduction}
        used = dict(given)
    report = zv.package.build_pyramid(str(path), FACTORS, reductions=given)
    assert report["changed"] is True and report["complete"] is True, report
    assert [lv["level"] for lv in report["levels"]] == [1, 2, 3], report
    for k in (1, 2, 3):
        _check_level(zv, path, cloud, k, used)
    # Level 0 is untouched.
    assert_same_multiset(read_level(zv, path, 0), cloud, "level 0 after build_pyramid")


@pytest.mark.parametrize("reduction", [None, "mean", "min", "max", "mode"])
def test_bool_and_float16_attributes_carry_down(zv, reference, cloud, tmp_path, reduction):
    # bool reduces as an integer (default mode, False on ties; a mean rounds half
    # to even); float16 as a float (default mean, rounded once to float16).
    pos = cloud[0]
    rng = np.random.default_rng(11)
    flag = rng.random(len(pos)) > 0.4
    half = rng.standard_normal(len(pos)).astype(np.float16)
    path = tmp_path / "store.zarrvectors"
    zv.write_points(str(path), pos, chunk_shape=CHUNK, bin_shape=BIN, attributes={"flag": flag, "half": half})
    if reduction is None:
        given, used = None, {"flag": "mode", "half": "mean"}
    elif reduction == "mode":  # mode applies to the integer-like bool only
        given, used = {"flag": "mode"}, {"flag": "mode", "half": "mean"}
    else:
        given = used = {"flag": reduction, "half": reduction}
    zv.package.build_pyramid(str(path), FACTORS[:2], reductions=given)
    for k in (1, 2):
        uniq, _, groups = group_bins(pos, level_bin(k))
        got_pos, got = read_level(zv, path, k)
        order = match_to_bins(got_pos, uniq, level_bin(k), f"level {k}")
        assert (got["flag"].dtype, got["half"].dtype) == (np.bool_, np.float16)
        for name, values in (("flag", flag), ("half", half)):
            expected = expected_reduction(values, groups, used[name]).astype(values.dtype)
            bad = np.nonzero(got[name][order] != expected)[0]
            assert len(bad) == 0, (f"level {k}: {name} ({used[name]}) differs in {len(bad)} of {len(groups)} bins; "
                                   f"first: values {values[groups[bad[0]]].tolist()} -> got {got[name][order][bad[0]]}, "
                                   f"expected {expected[bad[0]]}")
        assert 0 < got["flag"].sum() < len(got["flag"]), f"level {k}: flag is constant; the test shows nothing"
    if reduction is None:
        assert_same_multiset(reference.read(path, level=1), read_level(zv, path, 1), "reference read of level 1")


def test_report_matches_levels(zv, cloud, pyramid_store):
    info = zv.package.store_info(str(pyramid_store))
    assert [lv["level"] for lv in info["levels"]] == [0, 1, 2, 3]
    for lv in info["levels"][1:]:
        k = lv["level"]
        uniq, _, _ = group_bins(cloud[0], level_bin(k))
        assert lv["vertex_count"] == len(uniq), f"level {k}: store_info vertex_count {lv['vertex_count']} != {len(uniq)}"
        assert tuple(lv["bin_shape"]) == level_bin(k)


# --------------------------------------------------------------------------
# Chunk growth
# --------------------------------------------------------------------------

def test_bin_outgrowing_chunk_gets_level_chunk_override(zv, pyramid_store):
    info = zv.package.store_info(str(pyramid_store))
    chunks = {lv["level"]: tuple(lv["chunk_shape"]) for lv in info["levels"]}
    assert chunks == {0: CHUNK, 1: CHUNK, 2: CHUNK, 3: (80.0, 80.0, 80.0)}, chunks
    for k in (1, 2):
        meta = level_json(pyramid_store, k)["attributes"]["zarr_vectors_level"]
        assert meta.get("chunk_shape", list(CHUNK)) == list(CHUNK), f"level {k}: {meta}"
    meta3 = level_json(pyramid_store, 3)["attributes"]["zarr_vectors_level"]
    assert meta3.get("chunk_shape") == [80.0, 80.0, 80.0], f"level 3 has no chunk_shape override: {meta3}"


def test_chunk_scale_factors_are_honoured(zv, fresh, pyramid_store):
    path = fresh()
    zv.package.build_pyramid(str(path), FACTORS, chunk_scale_factors=[1, (2, 1, 2), (2, 4, 2)])
    info = zv.package.store_info(str(path))
    chunks = {lv["level"]: tuple(lv["chunk_shape"]) for lv in info["levels"]}
    assert chunks == {0: CHUNK, 1: CHUNK, 2: (80.0, 40.0, 80.0), 3: (80.0, 160.0, 80.0)}, chunks
    assert level_json(path, 2)["attributes"]["zarr_vectors_level"].get("chunk_shape") == [80.0, 40.0, 80.0]
    assert level_json(path, 3)["attributes"]["zarr_vectors_level"].get("chunk_shape") == [80.0, 160.0, 80.0]
    for k in (1, 2, 3):  # the chunking changes the files, not the points
        assert_same_multiset(read_level(zv, path, k), read_level(zv, pyramid_store, k),
                             f"level {k} with chunk_scale_factors vs automatic chunks")


@pytest.mark.parametrize("factors, scales", [
    (FACTORS, [1, 1, 1]),   # level 3: bin 80 does not divide chunk 40
    ([(3.0, 1.0)], [1]),    # bin 30 does not divide chunk 40
    ([(3.0, 1.0)], [(3, 3, 2)]),  # bin 30 divides 120 on x and y, not 80 on z
])
def test_chunk_scale_not_divided_by_bin_is_invalid(zv, errors, fresh, factors, scales):
    path = fresh()
    before = tree_digest(path)
    with pytest.raises(errors.InvalidInputError, match=all_of("bin", "chunk")):
        zv.package.build_pyramid(str(path), factors, chunk_scale_factors=scales)
    after = tree_digest(path)
    assert after == before, f"a refused build changed the store: {diff_trees(before, after)}"


# --------------------------------------------------------------------------
# Interoperability with zarr-vectors 0.9.2
# --------------------------------------------------------------------------

def test_reference_reads_every_level_we_build(zv, reference, pyramid_store):
    for k in (0, 1, 2, 3):
        ours = read_level(zv, pyramid_store, k)
        theirs = reference.read(pyramid_store, level=k)
        assert_same_multiset(theirs, ours, f"level {k}: zarr-vectors 0.9.2 read vs ours")
    report = reference.validate(pyramid_store, level=5)
    assert report["errors"] == [], "reference validator (level 5) failed:\n" + "\n".join(report["errors"])
    passed = "\n".join(report["passed"])
    assert "contiguous" in passed and all(f"resolution_{k}" in passed for k in (1, 2, 3)), (
        "the reference validator did not run its multiresolution checks:\n" + passed)


def test_pyramid_of_a_gzip_crc32c_store_keeps_its_codecs(zv, reference, cloud, tmp_path):
    # Coarse levels take level 0's codec chain, here one the reference writes
    # for compressor=[gzip, crc32c]; the reference reads and validates them all.
    import json

    codecs = [{"name": "gzip", "configuration": {"level": 1}}, {"name": "crc32c"}]
    path = tmp_path / "gz.zarrvectors"
    zv.write_points(str(path), cloud[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=cloud[1], compressor=codecs)
    zv.package.build_pyramid(str(path), FACTORS)
    chains = {k: json.loads((path / str(k) / "vertices" / "zarr.json").read_text())["codecs"] for k in (0, 1, 2, 3)}
    assert all(chain[1:] == codecs for chain in chains.values()), chains
    for k in (0, 1, 2, 3):
        assert_same_multiset(reference.read(path, level=k), read_level(zv, path, k), f"level {k} of a gzip+crc32c store")
    report = reference.validate(path, level=5)
    assert report["errors"] == [], "reference validator (level 5) failed:\n" + "\n".join(report["errors"])


def test_string_attributes_carry_down_as_their_categories(zv, reference, cloud, tmp_path):
    # The reference stores strings as dictionary codes. A pyramid carries them
    # down by mode (or first) with the categories in each level's metadata, so
    # both readers return strings on every level; a mean of codes is refused.
    pos = cloud[0]
    rng = np.random.default_rng(5)
    gene = np.array(["axon", "dendrite", "soma"])[rng.choice(3, len(pos), p=[0.5, 0.3, 0.2])]
    path = tmp_path / "theirs.zarrvectors"
    reference.write(path, pos, chunk_shape=CHUNK, bin_shape=BIN, attributes={"gene": gene})
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("'gene'", "'mean'", "mode or first")):
        zv.package.build_pyramid(str(path), FACTORS[:2], reductions={"gene": "mean"})
    zv.package.build_pyramid(str(path), FACTORS[:2])
    for k in (1, 2):
        uniq, _, groups = group_bins(pos, level_bin(k))
        got_pos, got = read_level(zv, path, k)
        order = match_to_bins(got_pos, uniq, level_bin(k), f"level {k}")
        expected = np.array([mode_smallest(gene[g]) for g in groups])  # categories sort like their codes
        assert np.array_equal(got["gene"][order], expected), f"level {k}: gene is not the per-bin mode"
        assert len(set(got["gene"])) == 3
        assert_same_multiset(reference.read(path, level=k), (got_pos, got), f"level {k}: reference read")
    doc = json.loads((path / "1" / "vertex_attributes" / "gene" / "zarr.json").read_text())["attributes"]
    assert (doc["encoding"], doc["categories"], doc["ordered"]) == ("dictionary", ["axon", "dendrite", "soma"], False)
    assert reference.validate(path, level=5)["errors"] == []


def ref_build_pyramid(reference, store: Path, factors, chunk_scale=None, timing=False) -> dict:
    cmd = [str(reference.python), "-I", str(ORACLE_PYRAMID), str(store)]
    for c, s in factors:
        cmd.append(f"--factors={c!r},{s!r}")
    for sc in chunk_scale or []:
        cmd.append("--chunk-scale=" + (str(sc) if isinstance(sc, int) else ",".join(map(str, sc))))
    if timing:
        cmd.append("--time")
    proc = subprocess.run(cmd, env=_subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"reference build_pyramid failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_we_read_pyramids_the_reference_builds(zv, reference, cloud, tmp_path):
    path = tmp_path / "ref.zarrvectors"
    reference.write(path, cloud[0], chunk_shape=CHUNK, bin_shape=BIN, attributes={"f": cloud[1]["f"]})
    # chunk scale per the reference: relative to the source level, so level 3 gets 80^3.
    ref_build_pyramid(reference, path, FACTORS, chunk_scale=[1, 1, 2])
    info = zv.package.store_info(str(path))
    assert [lv["level"] for lv in info["levels"]] == [0, 1, 2, 3], info["levels"]
    assert tuple(info["levels"][3]["chunk_shape"]) == (80.0, 80.0, 80.0)
    for k in (1, 2, 3):
        theirs, _ = reference.read(path, level=k, attrs=[])
        ours, _ = read_level(zv, path, k)
        assert_same_multiset((ours, {}), (theirs, {}), f"level {k} built by zarr-vectors 0.9.2: our read vs its read")
        # bbox reads on a reference-built level agree with a filter of the full read.
        lo, hi = (-60.0, -100.0, -30.0), (45.0, 70.0, 100.0)
        part, _ = read_level(zv, path, k, bbox=(lo, hi))
        assert_same_multiset((part, {}), (ours[bbox_mask(ours, lo, hi)], {}), f"level {k} bbox read")


def test_we_read_reference_levels_whose_bin_outgrows_the_chunk(zv, zvf_cli, reference, cloud, tmp_path):
    # By default the reference keeps the chunk while the bin grows: level 3 has
    # bin 80 in chunk 40, and every coarse level has one fragment per metavertex
    # rather than one per bin. Such levels are read chunk by chunk.
    path = tmp_path / "ref.zarrvectors"
    reference.write(path, cloud[0], chunk_shape=CHUNK, bin_shape=BIN)
    ref_build_pyramid(reference, path, FACTORS)
    info = zv.package.store_info(str(path))
    assert [tuple(lv["bin_shape"]) for lv in info["levels"]] == [(10.0,) * 3, (20.0,) * 3, (40.0,) * 3, (80.0,) * 3]
    assert all(tuple(lv["chunk_shape"]) == CHUNK for lv in info["levels"]), info["levels"]
    shown = subprocess.run([zvf_cli, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "80" in shown.stdout, shown.stderr
    boxes = [((-60.0, -100.0, -30.0), (45.0, 70.0, 100.0)), ((0.0, 0.0, 0.0), (10.0, 10.0, 10.0)),
             ((-100.0, -100.0, -100.0), (-20.0, 100.0, 100.0))]
    for k in (1, 2, 3):
        theirs, _ = reference.read(path, level=k, attrs=[])
        ours, _ = read_level(zv, path, k)
        assert len(ours) == info["levels"][k]["vertex_count"] > 0
        assert_same_multiset((ours, {}), (theirs, {}), f"level {k} built by zarr-vectors 0.9.2: our read vs its read")
        for lo, hi in boxes:
            part, _ = read_level(zv, path, k, bbox=(lo, hi))
            assert_same_multiset((part, {}), (ours[bbox_mask(ours, lo, hi)], {}), f"level {k} bbox {lo}-{hi}")


# --------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------

def test_multiscales_ome_and_level_metadata(zv, pyramid_store):
    attrs = root_json(pyramid_store)["attributes"]
    datasets = attrs["multiscales"][0]["datasets"]
    assert [d["path"] for d in datasets] == ["0", "1", "2", "3"]
    for k, d in enumerate(datasets):
        tr = {t["type"]: t for t in d["coordinateTransformations"]}
        assert tr["scale"]["scale"] == [2.0 ** k] * 3, f"level {k}: {d}"
        assert tr["translation"]["translation"] == [b / 2 for b in level_bin(k)], f"level {k}: {d}"
    nodes = [n["name"] for n in attrs["ome"]["nodes"] if n.get("type") == "zv:level"]
    assert nodes == ["0", "1", "2", "3"], attrs["ome"]["nodes"]
    for k in (1, 2, 3):
        meta = level_json(pyramid_store, k)["attributes"]["zarr_vectors_level"]
        n = len(read_level(zv, pyramid_store, k)[0])
        assert meta["level"] == k and meta["vertex_count"] == n and meta["parent_level"] == k - 1, meta


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

BOXES = [
    ((-60.0, -100.0, -30.0), (45.0, 70.0, 100.0)),
    ((-200.0, -200.0, -200.0), (0.0, 0.0, 0.0)),
    ((10.0, -35.5, -90.0), (90.0, 35.5, -10.0)),
    ((160.0, 160.0, 160.0), (200.0, 200.0, 200.0)),
]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_bbox_read_on_every_level(zv, pyramid_store, k):
    full = read_level(zv, pyramid_store, k)
    boxes = list(BOXES)
    # A box whose corners are metavertices: inclusive on both ends.
    p = full[0]
    lo, hi = np.minimum(p[3], p[10]), np.maximum(p[3], p[10])
    boxes.append((tuple(float(v) for v in lo), tuple(float(v) for v in hi)))
    for lo, hi in boxes:
        got = read_level(zv, pyramid_store, k, bbox=(lo, hi))
        expected = select(full, bbox_mask(full[0], lo, hi))
        if len(expected[0]) == 0:
            assert len(got[0]) == 0, f"level {k}, bbox {lo}..{hi}: {len(got[0])} points, expected none"
            continue
        assert_same_multiset(got, expected, f"level {k}, bbox {lo}..{hi}")
    assert len(read_level(zv, pyramid_store, k, bbox=boxes[-1])[0]) >= 2


def test_select_level_picks_coarsest_dense_enough(zv, pyramid_store):
    answers = set()
    levels = [read_level(zv, pyramid_store, k)[0] for k in range(4)]
    for lo, hi in BOXES:
        counts = [int(bbox_mask(levels[k], lo, hi).sum()) for k in range(4)]
        wants = sorted({0, 1, counts[3], counts[3] + 1, counts[2], counts[2] + 1, counts[1], counts[1] + 1,
                        counts[0], counts[0] + 1})
        for m in wants:
            ok = [k for k in range(4) if counts[k] >= m]
            expected = max(ok) if ok else 0
            answers.add(expected)
            got = zv.package.select_level(str(pyramid_store), (lo, hi), m)
            assert got == expected, f"select_level(box {lo}..{hi}, min_points={m}) = {got}, expected {expected}; counts per level {counts}"
    assert answers == {0, 1, 2, 3}, f"the boxes do not exercise every level: {answers}"


# --------------------------------------------------------------------------
# Atomic and idempotent
# --------------------------------------------------------------------------

def test_same_factors_again_changes_nothing(zv, fresh):
    path = fresh()
    zv.package.build_pyramid(str(path), FACTORS)
    before = tree_digest(path)
    again = zv.package.build_pyramid(str(path), FACTORS)
    assert again["changed"] is False, again
    assert [lv["level"] for lv in again["levels"]] == [1, 2, 3], again
    after = tree_digest(path)
    assert after == before, f"a re-run with the same factors modified the store: {diff_trees(before, after)}"


@pytest.mark.parametrize("other", [
    {"factors": [(2.0, 1.0), (4.0, 1.0)]},
    {"factors": FACTORS, "reductions": {"label": "max"}},
    {"factors": FACTORS, "chunk_scale_factors": [1, 2, 2]},
])
def test_other_settings_conflict_unless_overwrite(zv, errors, cloud, fresh, other):
    path = fresh()
    zv.package.build_pyramid(str(path), FACTORS)
    before = tree_digest(path)
    with pytest.raises(errors.ZvfError, match="overwrite"):
        zv.package.build_pyramid(str(path), **other)
    after = tree_digest(path)
    assert after == before, f"a refused build changed the store: {diff_trees(before, after)}"
    report = zv.package.build_pyramid(str(path), **other, overwrite=True)
    assert report["changed"] is True
    clean = fresh("clean")
    zv.package.build_pyramid(str(clean), **other)
    assert tree_digest(path) == tree_digest(clean), (
        f"overwrite is not the same as a clean build: {diff_trees(tree_digest(clean), tree_digest(path))}")


def test_overwrite_with_fewer_levels_leaves_no_old_level(zv, fresh):
    path = fresh()
    zv.package.build_pyramid(str(path), FACTORS)
    assert level_dirs(path) == ["0", "1", "2", "3"]
    zv.package.build_pyramid(str(path), [(4.0, 1.0)], overwrite=True)
    assert level_dirs(path) == ["0", "1"], f"left-over level directories: {level_dirs(path)}"
    assert dataset_paths(path) == ["0", "1"]
    info = zv.package.store_info(str(path))
    assert [lv["level"] for lv in info["levels"]] == [0, 1]
    assert tuple(info["levels"][1]["bin_shape"]) == (40.0, 40.0, 40.0)
    clean = fresh("clean")
    zv.package.build_pyramid(str(clean), [(4.0, 1.0)])
    assert tree_digest(path) == tree_digest(clean), diff_trees(tree_digest(clean), tree_digest(path))


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from zarr_vectors.multiresolution.coarsen import build_pyramid
    # One thread and a slow progress callback: the build takes seconds, so the
    # parent can kill it at a known stage.
    build_pyramid(sys.argv[1], [(2.0, 1.0), (2.0, 1.0), (2.0, 1.0)], threads=1,
                  progress=lambda done, total: time.sleep(0.02))
    print("finished")
""")


def _start_and_kill(path: Path, stage: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    marker = path / stage
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the build ended (exit {proc.returncode}) before {stage}/ appeared:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"{stage}/ did not appear within {timeout} s")
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"build was not killed (exit {proc.returncode}): {out}\n{err}"
    return proc


@pytest.mark.parametrize("stage", ["1", "2"], ids=["during-level-1", "during-level-2"])
def test_killed_build_leaves_level_0_and_rerun_completes(zv, errors, reference, cloud, base_store, tmp_path, stage):
    path = tmp_path / "killed" / "store.zarrvectors"
    clean = tmp_path / "clean" / "store.zarrvectors"
    for p in (path, clean):
        shutil.copytree(base_store, p)
    zv.package.build_pyramid(str(clean), FACTORS)

    _start_and_kill(path, stage)
    assert dataset_paths(path) == ["0"], f"root multiscales after the kill: {dataset_paths(path)}"
    assert [n["name"] for n in root_json(path)["attributes"]["ome"]["nodes"]] == ["0"]
    assert_same_multiset(read_level(zv, path, 0), cloud, "level 0 after a killed build (ours)")
    assert_same_multiset(reference.read(path, level=0), cloud, "level 0 after a killed build (zarr-vectors 0.9.2)")
    with pytest.raises(errors.StoreNotFoundError):
        zv.read_points(str(path), level=int(stage))  # the level being written is not visible
    if stage == "1":
        with pytest.raises(errors.StoreNotFoundError):
            zv.read_points(str(path), level=1)

    report = zv.package.build_pyramid(str(path), FACTORS)  # no overwrite needed: it is the same build
    assert report["changed"] is True and report["complete"] is True
    for k in range(4):
        assert_same_multiset(read_level(zv, path, k), read_level(zv, clean, k), f"level {k}: re-run vs clean build")
    a, b = tree_digest(path), tree_digest(clean)
    assert a == b, f"the completed re-run differs from a clean build: {diff_trees(b, a)}"


# --------------------------------------------------------------------------
# Scale-out with plain processes
# --------------------------------------------------------------------------

PART_SCRIPT = textwrap.dedent("""
    import json, sys
    from zarr_vectors.multiresolution.coarsen import build_pyramid
    r = build_pyramid(sys.argv[1], [(2.0, 1.0), (2.0, 1.0), (2.0, 1.0)], part=(int(sys.argv[2]), int(sys.argv[3])),
                      threads=1)
    print(json.dumps({"changed": r["changed"], "complete": r["complete"]}))
""")


def _run_parts(path: Path, indices, count: int) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", PART_SCRIPT, str(path), str(i), str(count)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in indices]
    for i, p in zip(indices, procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"part {i}/{count} failed (exit {p.returncode}):\n{out}\n{err}"
        assert json.loads(out.strip().splitlines()[-1]) == {"changed": True, "complete": False}


def test_parts_in_processes_equal_single_build(zv, errors, fresh, pyramid_store):
    path = fresh()
    _run_parts(path, [0, 1, 2], 3)
    assert dataset_paths(path) == ["0"], "parts alone must not publish levels"
    with pytest.raises(errors.StoreNotFoundError):
        zv.read_points(str(path), level=1)
    report = zv.package.build_pyramid(str(path), FACTORS, finalise_parts=True)
    assert report["changed"] is True and report["complete"] is True
    for k in range(4):
        assert_same_multiset(read_level(zv, path, k), read_level(zv, pyramid_store, k),
                             f"level {k}: 3 parts + finalise vs one process")
    assert zv.package.store_info(str(path))["levels"] == zv.package.store_info(str(pyramid_store))["levels"]
    assert not any(f.startswith(".zvf/") for f in list_files(path)), "staging left behind"
    assert zv.package.build_pyramid(str(path), FACTORS)["changed"] is False


def test_finalise_parts_names_missing_part(zv, errors, fresh, pyramid_store):
    path = fresh()
    _run_parts(path, [0, 2], 3)
    with pytest.raises(errors.ZvfError) as exc:
        zv.package.build_pyramid(str(path), FACTORS, finalise_parts=True)
    message = str(exc.value).replace(str(path), "STORE")
    assert re.search(all_of(r"part", r"\b1\b"), message), f"the error does not name the missing part 1: {message}"
    assert dataset_paths(path) == ["0"]
    with pytest.raises(errors.StoreNotFoundError):
        zv.read_points(str(path), level=1)
    _run_parts(path, [1], 3)
    zv.package.build_pyramid(str(path), FACTORS, finalise_parts=True)
    for k in range(4):
        assert_same_multiset(read_level(zv, path, k), read_level(zv, pyramid_store, k), f"level {k} after the late part")


# --------------------------------------------------------------------------
# Consolidated metadata
# --------------------------------------------------------------------------

def test_consolidated_metadata_is_refreshed(zv, fresh):
    import zarr

    path = fresh()
    zarr.consolidate_metadata(str(path))
    zv.package.build_pyramid(str(path), FACTORS)
    group = zarr.open_group(str(path), mode="r", use_consolidated=True)
    cm = group.metadata.consolidated_metadata
    assert cm is not None, "build_pyramid dropped the consolidated metadata"
    flat = cm.flattened_metadata
    for k in (1, 2, 3):
        for arr in ("vertices", "vertex_fragments", "vertex_attributes/count", "vertex_attributes/label"):
            assert f"{k}/{arr}" in flat, f"consolidated metadata lacks {k}/{arr}: {sorted(flat)}"
    assert [d["path"] for d in group.attrs["multiscales"][0]["datasets"]] == ["0", "1", "2", "3"]
    on_disk = json.loads((path / "1" / "vertices" / "zarr.json").read_text())["attributes"]
    assert dict(flat["1/vertices"].attributes) == on_disk, "consolidated 1/vertices differs from its zarr.json"
    arr = group["1/vertices"]
    first = on_disk["nonempty_chunks"][0]
    origin = on_disk.get("chunk_grid_origin", [0, 0, 0])
    idx = tuple(int(c) - int(o) for c, o in zip(first.split("."), origin))
    cell = arr[idx]
    while isinstance(cell, np.ndarray):  # zarr returns vlen bytes wrapped in 0-d arrays
        cell = cell.item()
    assert isinstance(cell, (bytes, np.bytes_)) and len(cell) > 0, f"level-1 cell {first} read as {cell!r}"

    # Replacing with fewer levels drops them from the consolidated copy too.
    zv.package.build_pyramid(str(path), [(2.0, 1.0)], overwrite=True)
    flat = zarr.open_group(str(path), mode="r", use_consolidated=True).metadata.consolidated_metadata.flattened_metadata
    assert "1/vertices" in flat and not any(k.startswith(("2/", "3/")) or k in ("2", "3") for k in flat), sorted(flat)


# --------------------------------------------------------------------------
# Finalise interplay
# --------------------------------------------------------------------------

def test_refinalise_drops_stale_pyramid(zv, errors, cloud, tmp_path):
    path = tmp_path / "parts.zarrvectors"
    pos, attrs = cloud
    x = pos[:, 0]
    ranges = [(-200.0, 0.0), (0.0, 100.0), (100.0, 200.0)]
    for lo, hi in ranges[:2]:
        m = (x >= lo) & (x < hi)
        zv.write_points_partition(str(path), pos[m], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes={k: v[m] for k, v in attrs.items()}, x_range=(lo, hi))
    zv.finalise(str(path))
    zv.package.build_pyramid(str(path), FACTORS)
    assert level_dirs(path) == ["0", "1", "2", "3"]
    lo, hi = ranges[2]
    m = (x >= lo) & (x < hi)
    assert m.sum() > 0
    zv.write_points_partition(str(path), pos[m], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={k: v[m] for k, v in attrs.items()}, x_range=(lo, hi))
    report = zv.finalise(str(path))
    assert report["pyramid_dropped"] is True, report
    assert level_dirs(path) == ["0"], f"stale levels remain: {level_dirs(path)}"
    assert dataset_paths(path) == ["0"]
    assert "zvf_pyramid" not in root_json(path)["attributes"]
    with pytest.raises(errors.StoreNotFoundError):
        zv.read_points(str(path), level=1)
    assert_same_multiset(read_level(zv, path, 0), cloud, "level 0 after re-finalisation")
    report = zv.package.build_pyramid(str(path), FACTORS)
    assert report["changed"] is True
    _check_level(zv, path, cloud, 2, {"f": "mean", "label": "mode", "rgb": "mode"})


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"factors": [(0.5, 1.0)]}, "InvalidInputError", all_of("factors", "below 1")),
    ({"factors": [(2.0, 1.0), (0.0, 1.0)]}, "InvalidInputError", all_of(r"factors\[1\]", "below 1")),
    ({"factors": [(2.0, 2.0)]}, "InvalidInputError", all_of("sparsity", "object")),
    ({"factors": [(2.0, 0.5)]}, "InvalidInputError", "sparsity"),
    ({"factors": []}, "InvalidInputError", "factors"),
    ({"factors": FACTORS, "reductions": {"nosuch": "max"}}, "InvalidInputError", "nosuch"),
    ({"factors": FACTORS, "reductions": {"f": "mode"}}, "InvalidInputError", all_of("mode", "'f'|f ")),
    ({"factors": FACTORS, "reductions": {"label": "median"}}, "InvalidInputError", "median"),
    ({"factors": FACTORS, "chunk_scale_factors": [1, 1]}, "InvalidInputError", "chunk_scale_factors"),
    ({"factors": FACTORS, "part": (3, 3)}, "InvalidInputError", "part"),
    ({"factors": FACTORS, "part": (0, 0)}, "InvalidInputError", all_of("part", "count")),
    ({"factors": FACTORS, "part": (-1, 2)}, "InvalidInputError", "part"),
    ({"factors": FACTORS, "part": (1.5, 2)}, "InvalidInputError", all_of("part", "whole")),
    ({"factors": FACTORS, "part": (0, 2**31)}, "InvalidInputError", all_of("part", "count")),
    ({"factors": FACTORS, "part": (0, 2), "finalise_parts": True}, "InvalidInputError", "finalise_parts"),
    ({"factors": FACTORS, "chunk_scale_factors": [2**41, 1]}, "InvalidInputError", "chunk_scale_factors"),
    ({"factors": FACTORS, "chunk_scale_factors": [1.5, 1]}, "InvalidInputError", "chunk_scale_factors"),
])
def test_bad_arguments_are_refused_without_trace(zv, errors, fresh, kwargs, exc, pattern):
    path = fresh()
    before = tree_digest(path)
    with pytest.raises(getattr(errors, exc), match=pattern):
        zv.package.build_pyramid(str(path), **kwargs)
    after = tree_digest(path)
    assert after == before, f"a refused build changed the store: {diff_trees(before, after)}"


def test_attribute_named_count_is_refused(zv, errors, cloud, tmp_path):
    path = tmp_path / "count.zarrvectors"
    zv.write_points(str(path), cloud[0], chunk_shape=CHUNK, bin_shape=BIN,
                    attributes={"count": cloud[1]["label"]})
    before = tree_digest(path)
    with pytest.raises(errors.ZvfError, match=all_of("count", "rename")):
        zv.package.build_pyramid(str(path), FACTORS)
    assert tree_digest(path) == before


def test_store_not_finalised_is_refused(zv, errors, cloud, tmp_path):
    pos, attrs = cloud
    m = pos[:, 0] < 0
    # Only partitions, never finalised.
    path = tmp_path / "pending.zarrvectors"
    zv.write_points_partition(str(path), pos[m], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={k: v[m] for k, v in attrs.items()}, x_range=(-200.0, 0.0))
    with pytest.raises(errors.ZvfError, match="(?i)finalis"):
        zv.package.build_pyramid(str(path), FACTORS)
    assert level_dirs(path) == [] or level_dirs(path) == ["0"]
    # Finalised once, then a new partition is pending.
    zv.finalise(str(path))
    zv.write_points_partition(str(path), pos[~m], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes={k: v[~m] for k, v in attrs.items()}, x_range=(0.0, 200.0))
    before = tree_digest(path)
    with pytest.raises(errors.ZvfError, match="(?i)finalis"):
        zv.package.build_pyramid(str(path), FACTORS)
    assert tree_digest(path) == before


def test_missing_store_is_not_found(zv, errors, tmp_path):
    with pytest.raises(errors.StoreNotFoundError):
        zv.package.build_pyramid(str(tmp_path / "nothing.zarrvectors"), FACTORS)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def test_cli_pyramid_and_info(zv, zvf_cli, fresh, pyramid_store):
    path = fresh()
    proc = run_cli(zvf_cli, "pyramid", path, "--factors", "2,1", "--factors", "2,1")
    assert proc.returncode == 0, f"zvf pyramid failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    info = run_cli(zvf_cli, "info", path)
    assert info.returncode == 0, info.stderr
    levels = [line.split(":")[0] for line in info.stdout.splitlines() if line.startswith("level ")]
    assert levels == ["level 0", "level 1", "level 2"], info.stdout
    for k in (1, 2):
        assert_same_multiset(read_level(zv, path, k), read_level(zv, pyramid_store, k), f"CLI level {k}")
    before = tree_digest(path)
    again = run_cli(zvf_cli, "pyramid", path, "--factors", "2,1", "--factors", "2,1")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
    assert tree_digest(path) == before
    bad = run_cli(zvf_cli, "pyramid", path, "--factors", "0.5,1")
    assert bad.returncode != 0 and "below 1" in bad.stderr, bad.stdout + bad.stderr


@pytest.mark.parametrize("args, pattern", [
    (["--part", "0/0"], all_of("--part count", "out of range")),
    (["--part", "2/2"], all_of("--part index", "out of range")),
    (["--part", "1/2147483648"], all_of("--part count", "out of range")),
    (["--part", "1.5/2"], all_of("--part index", "whole number")),
    (["--part", "x/2"], all_of("--part index", "whole number")),
    (["--chunk-scale", "1.5", "--chunk-scale", "1"], all_of("--chunk-scale", "whole number")),
    (["--chunk-scale", "0", "--chunk-scale", "1"], all_of("--chunk-scale", "out of range")),
])
def test_cli_pyramid_bad_part_or_scale_is_a_usage_error(zvf_cli, fresh, args, pattern):
    path = fresh()
    before = tree_digest(path)
    proc = run_cli(zvf_cli, "pyramid", path, "--factors", "2,1", "--factors", "2,1", *args)
    assert proc.returncode == 2 and re.search(pattern, proc.stderr), proc.stdout + proc.stderr
    assert tree_digest(path) == before, "a refused pyramid changed the store"


def test_cli_part_with_finalise_parts_is_refused(zvf_cli, fresh):
    path = fresh()
    before = tree_digest(path)
    proc = run_cli(zvf_cli, "pyramid", path, "--factors", "2,1", "--part", "0/2", "--finalise-parts")
    assert proc.returncode == 3 and "finalise_parts" in proc.stderr, proc.stdout + proc.stderr
    assert tree_digest(path) == before


def test_cli_parts_then_finalise_parts(zv, zvf_cli, fresh, pyramid_store):
    path = fresh()
    args = ["--factors", "2", "--factors", "2", "--factors", "2"]
    for i in range(2):
        proc = run_cli(zvf_cli, "pyramid", path, *args, "--part", f"{i}/2")
        assert proc.returncode == 0, f"--part {i}/2 failed:\n{proc.stdout}\n{proc.stderr}"
        assert "--finalise-parts" in proc.stdout, proc.stdout
    assert dataset_paths(path) == ["0"]
    proc = run_cli(zvf_cli, "pyramid", path, *args, "--finalise-parts")
    assert proc.returncode == 0, f"--finalise-parts failed:\n{proc.stdout}\n{proc.stderr}"
    for k in range(4):
        assert_same_multiset(read_level(zv, path, k), read_level(zv, pyramid_store, k), f"CLI parts, level {k}")
