"""Bad input gives a clear, typed error that names the bad value, and writes
nothing."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from helpers import (
    all_of,
    assert_same_multiset,
    diff_trees,
    list_files,
    make_attributes,
    tree_digest,
    uniform_points,
)

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)
N = 300

# A lone zero (0, 0.0), not part of 250 or 250.0.
LONE_ZERO = r"(?<![\d.])0(?:\.0*)?(?![\d.])"


def _case_nan(kw):
    kw["positions"][42, 2] = np.nan
    return r"(?i:\bnan\b)"


def _case_inf(kw):
    kw["positions"][7, 1] = np.inf
    return r"(?i:\binf)"


def _case_neg_inf(kw):
    kw["positions"][7, 2] = -np.inf
    return r"(?i:-?\binf)"


def _case_1d(kw):
    kw["positions"] = kw["positions"].ravel()
    return r"(?i:\(900,?\)|ndim|1-?d\b|dimension)"


def _case_5d(kw):
    kw["positions"] = np.concatenate([kw["positions"], kw["positions"][:, :2]], axis=1)
    return r"\b5\b"


def _case_int_positions(kw):
    kw["positions"] = kw["positions"].astype(np.int32)
    return r"int32"


def _case_attr_length(kw):
    kw["attributes"]["intensity"] = kw["attributes"]["intensity"][:-1]
    return all_of("intensity", r"\b299\b")


def _case_attr_3d(kw):
    kw["attributes"]["tensor"] = np.zeros((N, 2, 2), dtype=np.float32)
    return "tensor"


def _case_attr_object(kw):
    kw["attributes"]["label"] = np.array([object()] * N, dtype=object)
    return all_of("label", r"(?i:object|dtype)")


def _case_attr_str(kw):
    kw["attributes"]["label"] = np.array(["a"] * N)
    return all_of("label", r"(?i:<U1|str|unicode|dtype)")


def _case_attr_bool_byte(kw):
    raw = np.zeros(N, dtype=np.uint8)
    raw[17] = 2  # numpy views any byte as bool; stored, it would not read back as True
    kw["attributes"]["flag"] = raw.view(np.bool_)
    return all_of("'flag'", "bool", r"\bbyte 2\b", r"\brow 17\b")


def _case_positions_float16(kw):
    kw["positions"] = kw["positions"].astype(np.float16)  # float16 is an attribute dtype only
    return all_of("positions", "float16", "float32 or float64")


def _case_chunk_zero(kw):
    kw["chunk_shape"] = (250.0, 0.0, 250.0)
    kw["bin_shape"] = None
    return all_of(r"(?i:chunk.?shape)", LONE_ZERO)


def _case_chunk_negative(kw):
    kw["chunk_shape"] = (250.0, 250.0, -1.0)
    kw["bin_shape"] = None
    return all_of(r"(?i:chunk.?shape)", r"-1(?:\.0*)?\b")


def _case_chunk_length(kw):
    kw["chunk_shape"] = (250.0, 250.0)
    kw["bin_shape"] = None
    return r"(?i:chunk.?shape)"


def _case_bin_not_dividing(kw):
    kw["bin_shape"] = (100.0, 100.0, 100.0)
    return all_of(r"(?i:bin.?shape)", r"\b100(?:\.0*)?\b")


def _case_bin_zero(kw):
    kw["bin_shape"] = (125.0, 0.0, 125.0)
    return all_of(r"(?i:bin.?shape)", LONE_ZERO)


def _case_too_many_bins(kw):
    kw["bin_shape"] = (1.0, 1.0, 1.0)  # 250^3 bins in every chunk, each with a fragment entry
    return all_of(r"(?i:bin.?shape)", r"\b15625000\b", r"\b262144\b")


def _case_chunk_str(kw):
    kw["chunk_shape"] = "250"
    kw["bin_shape"] = None
    return all_of(r"(?i:chunk.?shape)", "'250'")


def _case_compressor(kw):
    kw["compressor"] = "lz4"
    return "lz4"


def _case_compressor_list(codecs, pattern):
    def case(kw):
        kw["compressor"] = codecs
        return pattern
    return case


def _case_attr_name(name):
    def case(kw):
        kw["attributes"][name] = np.zeros(N, dtype=np.float32)
        if name == "":
            return r"(?i:attribute|name)"
        # The raw name, or the name as repr()/JSON would escape it.
        return "|".join({re.escape(name), re.escape(repr(name)[1:-1])})
    return case


COMMON_CASES = {
    "nan-position": _case_nan,
    "inf-position": _case_inf,
    "neg-inf-position": _case_neg_inf,
    "positions-1d": _case_1d,
    "positions-5d": _case_5d,
    "positions-int32": _case_int_positions,
    "attribute-length": _case_attr_length,
    "attribute-3d": _case_attr_3d,
    "attribute-bool-byte": _case_attr_bool_byte,
    "positions-float16": _case_positions_float16,
    "attribute-object": _case_attr_object,
    "attribute-str": _case_attr_str,
    "chunk-zero": _case_chunk_zero,
    "chunk-negative": _case_chunk_negative,
    "chunk-wrong-length": _case_chunk_length,
    "bin-not-dividing": _case_bin_not_dividing,
    "bin-zero": _case_bin_zero,
    "too-many-bins-per-chunk": _case_too_many_bins,
    "chunk-shape-str": _case_chunk_str,
    "compressor-lz4": _case_compressor,
    "compressor-list-unknown": _case_compressor_list([{"name": "lz4"}], all_of("'lz4'", "zstd, blosc, gzip")),
    "compressor-list-zstd-level": _case_compressor_list(
        [{"name": "zstd", "configuration": {"level": 99}}], r"zstd level 99"),
    "compressor-list-gzip-level": _case_compressor_list(
        [{"name": "gzip", "configuration": {"level": 10}}], r"\b10\b"),
    "compressor-list-two": _case_compressor_list([{"name": "zstd"}, {"name": "gzip"}], "two compressors"),
    "compressor-list-crc-first": _case_compressor_list([{"name": "crc32c"}, {"name": "zstd"}], "after 'crc32c'"),
    "compressor-list-entry": _case_compressor_list([3], "compressor list entries"),
    "compressor-json-text": _case_compressor_list('[{"name": "zstd"', "not valid JSON"),
}
# Valid attribute names match ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ and are not "..".
BAD_NAMES = {
    "empty": "", "slash": "a/b", "dotdot": "..", "leading-dot": ".hidden", "space": "x y",
    "leading-dash": "-lead", "backslash": "a\\b", "non-ascii": "na\u00efve", "tab": "tab\tname",
    "metadata-document": "zarr.json", "metadata-document-upper": "ZARR.JSON",
}
for _slug, _name in BAD_NAMES.items():
    COMMON_CASES[f"attribute-name-{_slug}"] = _case_attr_name(_name)

WRITERS = ["write_points", "partition-fresh", "partition-existing"]


def _base(rng):
    positions = uniform_points(rng, N, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    return {
        "positions": positions,
        "chunk_shape": CHUNK,
        "bin_shape": BIN,
        "attributes": make_attributes(rng, N),
    }


def _prepare(zv, rng, path, writer):
    """Return (callable(path, **kw), snapshot-before) for the writer mode."""
    if writer == "write_points":
        return zv.write_points, None
    if writer == "partition-existing":
        prior = uniform_points(rng, 100, (1000.0, 0.0, 0.0), (2000.0, 1000.0, 1000.0))
        zv.write_points_partition(str(path), prior, chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=make_attributes(rng, 100), x_range=(1000.0, 2000.0))
        before = tree_digest(path)
        assert before, "the prior partition wrote no files"
    else:
        before = None

    def write(p, positions, **kw):
        return zv.write_points_partition(p, positions, x_range=(0.0, 1000.0), **kw)

    return write, before


def _assert_wrote_nothing(path, before):
    if before is None:
        assert not path.exists(), f"a rejected write left {path} behind: {list_files(path)[:20]}"
    else:
        after = tree_digest(path)
        assert after == before, f"a rejected write changed the store: {diff_trees(before, after)}"


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("case", list(COMMON_CASES))
def test_bad_write_input(zv, rng, store_path, writer, case):
    write, before = _prepare(zv, rng, store_path, writer)
    kw = _base(rng)
    pattern = COMMON_CASES[case](kw)
    positions = kw.pop("positions")
    with pytest.raises(zv.errors.InvalidInputError, match=pattern):
        write(str(store_path), positions, **kw)
    _assert_wrote_nothing(store_path, before)


def test_invalid_input_error_is_a_value_error(zv):
    errors = zv.errors
    assert issubclass(errors.InvalidInputError, errors.ZvfError)
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.StoreNotFoundError, errors.ZvfError)
    assert issubclass(errors.StoreNotFoundError, FileNotFoundError)
    assert issubclass(errors.CorruptStoreError, errors.ZvfError)
    assert issubclass(errors.PartitionConflictError, errors.ZvfError)
    assert issubclass(errors.StoreIOError, errors.ZvfError)
    assert issubclass(errors.StoreIOError, OSError)


@pytest.mark.parametrize("writer", ["write_points", "partition-fresh"])
def test_valid_attribute_names_are_accepted(zv, rng, store_path, writer):
    write, _ = _prepare(zv, rng, store_path, writer)
    kw = _base(rng)
    names = ["a.b", "x-1", "_y", "A9", "0", "v..w", "CamelCase_2"]
    attrs = {name: rng.standard_normal(N).astype(np.float32) for name in names}
    write(str(store_path), kw["positions"], chunk_shape=CHUNK, bin_shape=BIN, attributes=attrs)
    if writer != "write_points":
        zv.finalise(str(store_path))
    result = zv.read_points(str(store_path))
    got = (np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()})
    assert_same_multiset(got, (kw["positions"], attrs), "valid attribute names")


def test_points_outside_explicit_bounds(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(zv.errors.InvalidInputError, match=r"(?i:bound)"):
        zv.write_points(str(store_path), positions, bounds=((0.0, 0.0, 0.0), (500.0, 500.0, 500.0)), **kw)
    assert not store_path.exists(), f"a rejected write left files: {list_files(store_path)[:20]}"


def test_explicit_bounds_are_inclusive(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    positions[0] = (999.0, 999.0, 999.0)
    positions[1] = (0.0, 0.0, 0.0)
    positions = np.clip(positions, 0.0, 999.0).astype(np.float32)
    zv.write_points(str(store_path), positions, bounds=((0.0, 0.0, 0.0), (999.0, 999.0, 999.0)), **kw)
    result = zv.read_points(str(store_path))
    assert len(result["positions"]) == N


def test_write_points_onto_existing_store(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, **kw)
    before = tree_digest(store_path)
    with pytest.raises(zv.errors.ZvfError, match=re.escape(str(store_path))):
        zv.write_points(str(store_path), positions[:10], **{**kw, "attributes": {}})
    after = tree_digest(store_path)
    assert after == before, f"the refused write changed the store: {diff_trees(before, after)}"


# --------------------------------------------------------------------------
# read_points
# --------------------------------------------------------------------------

def test_read_missing_path(zv, tmp_path):
    missing = tmp_path / "nowhere.zarrvectors"
    with pytest.raises(zv.errors.StoreNotFoundError, match=re.escape("nowhere.zarrvectors")):
        zv.read_points(str(missing))
    assert not missing.exists()


@pytest.mark.parametrize("content", ["empty", "unrelated-file"])
def test_read_directory_that_is_not_a_store(zv, tmp_path, content):
    path = tmp_path / "plain.zarrvectors"
    path.mkdir()
    if content == "unrelated-file":
        (path / "notes.txt").write_text("not a store\n")
    with pytest.raises(zv.errors.StoreNotFoundError):
        zv.read_points(str(path))


def _cell_files(path, array):
    root = path / "0" / array / "c"
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "array,compressor",
    [("vertices", None), ("vertices", "zstd"), ("vertex_attributes/intensity", None),
     ("vertices", "gzip"), ("vertices", [{"name": "crc32c"}])],
    ids=["vertices", "vertices-zstd", "attribute", "vertices-gzip", "vertices-crc32c"],
)
def test_read_truncated_cell(zv, rng, store_path, array, compressor):
    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, compressor=compressor, **kw)
    cells = _cell_files(store_path, array)
    assert cells, f"no cell files under {store_path / '0' / array / 'c'}"
    victim = cells[len(cells) // 2]
    data = victim.read_bytes()
    assert len(data) > 3
    victim.write_bytes(data[:3])
    key = victim.relative_to(store_path).as_posix()  # e.g. 0/vertices/c/1/2/3
    key_tail = key.split("/", 1)[1]  # accept the key with or without the level prefix
    with pytest.raises(zv.errors.CorruptStoreError, match=re.escape(key_tail)):
        zv.read_points(str(store_path))


@pytest.mark.parametrize("compressor", [[{"name": "crc32c"}], [{"name": "gzip"}, {"name": "crc32c"}]],
                         ids=["crc32c", "gzip-crc32c"])
def test_flipped_bit_under_a_checksum_is_a_corrupt_cell(zv, zvf_cli, rng, store_path, compressor):
    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, compressor=compressor, **kw)
    assert len(zv.read_points(str(store_path))["positions"]) == len(positions)
    victim = _cell_files(store_path, "vertex_attributes/intensity")[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # same length: only the checksum can tell
    victim.write_bytes(bytes(data))
    key_tail = victim.relative_to(store_path).as_posix().split("/", 1)[1]
    with pytest.raises(zv.errors.CorruptStoreError, match=all_of(re.escape(key_tail), "crc32c checksum mismatch")):
        zv.read_points(str(store_path))
    proc = subprocess.run([zvf_cli, "validate", str(store_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5 and "crc32c checksum mismatch" in proc.stdout, (proc.returncode, proc.stdout)


@pytest.mark.parametrize("level", [1, 7, -1])
def test_read_missing_level(zv, rng, store_path, level):
    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, **kw)
    with pytest.raises((zv.errors.StoreNotFoundError, zv.errors.InvalidInputError),
                       match=all_of(r"(?i:level)", rf"(?<![\d-]){level}\b")):
        zv.read_points(str(store_path), level=level)


def test_read_bbox_of_wrong_dimension(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, **kw)
    with pytest.raises(zv.errors.InvalidInputError, match=r"(?i:bbox|box)"):
        zv.read_points(str(store_path), bbox=((0.0, 0.0), (10.0, 10.0)))


# --------------------------------------------------------------------------
# Found by an adversarial audit: byte order, callbacks, limits, bounds
# --------------------------------------------------------------------------

@pytest.mark.parametrize("writer", ["write_points", "partition-fresh"])
def test_big_endian_arrays_are_stored_by_value(zv, rng, store_path, writer):
    # The engine reads raw bytes; a big-endian array (from a file written on
    # another machine) must be stored as its values, not byte-swapped.
    write, _ = _prepare(zv, rng, store_path, writer)
    positions = uniform_points(rng, N, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    attrs = {"i": np.arange(N, dtype=np.int32), "f": rng.standard_normal(N).astype(np.float64),
             "rgb": rng.integers(0, 60000, (N, 3)).astype(np.uint16)}
    write(str(store_path), positions.astype(">f4"), chunk_shape=CHUNK, bin_shape=BIN,
          attributes={k: v.astype(v.dtype.newbyteorder(">")) for k, v in attrs.items()})
    if writer != "write_points":
        zv.finalise(str(store_path))
    result = zv.read_points(str(store_path))
    got = (np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()})
    assert got[0].dtype == np.float32 and got[1]["i"].dtype == np.int32
    assert_same_multiset(got, (positions, attrs), "big-endian input")


class _CallbackFailed(Exception):
    pass


def _raise_at_second_call():
    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise _CallbackFailed(f"progress callback failed at {done} of {total}")
    return progress


def test_progress_callback_that_raises_cancels_write_points(zv, rng, store_path):
    # The callback's exception (KeyboardInterrupt too) reaches the caller and the
    # write is undone; it used to abort the interpreter.
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(_CallbackFailed):
        zv.write_points(str(store_path), positions, progress=_raise_at_second_call(), **kw)
    _assert_wrote_nothing(store_path, None)
    zv.write_points(str(store_path), positions, **kw)
    assert zv.read_points(str(store_path))["vertex_count"] == N


def test_progress_callback_that_raises_cancels_a_partition(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(_CallbackFailed):
        zv.write_points_partition(str(store_path), positions, x_range=(0.0, 1000.0),
                                  progress=_raise_at_second_call(), **kw)
    # Like a killed task: finalise refuses the unfinished partition, a re-run completes it.
    with pytest.raises(zv.errors.PartitionConflictError, match=r"x_0_1000"):
        zv.finalise(str(store_path))
    zv.write_points_partition(str(store_path), positions, x_range=(0.0, 1000.0), **kw)
    zv.finalise(str(store_path))
    result = zv.read_points(str(store_path))
    got = (np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()})
    assert_same_multiset(got, (positions, kw["attributes"]), "partition re-run after a failed callback")


def test_progress_callback_that_raises_cancels_build_pyramid(zv, rng, store_path):
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, **kw)
    with pytest.raises(_CallbackFailed):
        build_pyramid(str(store_path), [(2.0, 1.0)], progress=_raise_at_second_call())
    assert zv.read_points(str(store_path))["vertex_count"] == N
    report = build_pyramid(str(store_path), [(2.0, 1.0)])
    assert report["levels"][0]["vertex_count"] > 0
    assert len(zv.read_points(str(store_path), level=1)["positions"]) == report["levels"][0]["vertex_count"]


@pytest.mark.parametrize("threads", [100_000, -1, True, 2.0])
def test_threads_out_of_range(zv, rng, store_path, threads):
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("threads", re.escape(repr(threads)))):
        zv.write_points(str(store_path), positions, threads=threads, **kw)
    _assert_wrote_nothing(store_path, None)


@pytest.mark.parametrize("bounds,pattern", [
    (((-np.inf,) * 3, (np.inf,) * 3), r"(?i:not finite)"),
    (((0.0,) * 3, (np.inf,) * 3), r"(?i:not finite)"),
    (((-1e30,) * 3, (1e30,) * 3), r"(?i:too far from the origin)"),
])
def test_bounds_must_be_finite_and_near_enough(zv, rng, store_path, bounds, pattern):
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("bounds", pattern)):
        zv.write_points(str(store_path), positions, bounds=bounds, **kw)
    _assert_wrote_nothing(store_path, None)


@pytest.mark.parametrize("factors,part,pattern", [
    ((2.0, 1.0), None, r"factors\[1\].*repeats level 1"),     # one pair passed flat
    ([(2.0, 1.0), (1.0, 1.0)], None, r"factors\[1\].*repeats level 1"),
    ([(2.0, 1.0)], (0, 0), r"part \(0, 0\)"),
    ([(2.0, 1.0)], (2, 2), r"part \(2, 2\)"),
])
def test_pyramid_factors_and_part_are_checked(zv, rng, store_path, factors, part, pattern):
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    kw = _base(rng)
    zv.write_points(str(store_path), kw.pop("positions"), **kw)
    before = tree_digest(store_path)
    with pytest.raises(zv.errors.InvalidInputError, match=pattern):
        build_pyramid(str(store_path), factors, part=part)
    assert tree_digest(store_path) == before


@pytest.mark.parametrize("content", ["{", "", '{"zarr_format": 3, "node_type": "array"}'])
def test_open_store_with_a_broken_root_document(zv, rng, store_path, content):
    from zarr_vectors.core.store import open_store

    kw = _base(rng)
    zv.write_points(str(store_path), kw.pop("positions"), **kw)
    (store_path / "zarr.json").write_text(content)
    with pytest.raises(zv.errors.CorruptStoreError, match=re.escape("zarr.json")):
        open_store(str(store_path))


def test_nan_range_is_named_as_nan(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("z_range", "NaN")):
        zv.write_points_partition(str(store_path), positions, z_range=(float("nan"), 330.0), **kw)
    _assert_wrote_nothing(store_path, None)


def test_progress_must_be_callable_and_allow_gaps_a_bool(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("progress", r"\b5\b")):
        zv.write_points(str(store_path), positions, progress=5, **kw)
    _assert_wrote_nothing(store_path, None)
    zv.write_points_partition(str(store_path), positions, x_range=(0.0, 1000.0), **kw)
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("allow_gaps", "'no'")):
        zv.finalise(str(store_path), allow_gaps="no")
    assert not (store_path / "zarr.json").exists()


def test_finalise_of_a_one_shot_store_reports_what_it_holds(zv, rng, store_path):
    kw = _base(rng)
    positions = kw.pop("positions")
    zv.write_points(str(store_path), positions, **kw)
    before = tree_digest(store_path)
    report = zv.finalise(str(store_path))
    assert report["vertex_count"] == N and report["chunk_count"] > 0 and not report["changed"], report
    assert tree_digest(store_path) == before
