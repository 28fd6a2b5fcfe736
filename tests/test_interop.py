"""Interoperability with the reference implementation (zarr-vectors 0.9.2)
and with plain zarr-python.

Our stores must be readable by the reference with the same multiset of points
and attributes and pass its level-3 validator; reference stores must be
readable by us; and zarr-python must open every array we write.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import zarr

from helpers import (
    all_of,
    assert_same_multiset,
    bbox_mask,
    chunk_keys,
    concat,
    make_attributes,
    make_points,
    select,
    slab_mask,
    uniform_points,
)

CHUNK3 = (250.0, 250.0, 250.0)
BIN3 = (125.0, 125.0, 125.0)


def read_ours(zv, path, **kwargs):
    result = zv.read_points(path, **kwargs)
    return np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()}


def assert_valid(reference, path, level=3):
    report = reference.validate(path, level=level)
    assert report["errors"] == [], (
        f"reference validator (level {level}) reported errors for {path}:\n"
        + "\n".join(report["errors"])
        + ("\nwarnings:\n" + "\n".join(report["warnings"]) if report["warnings"] else "")
    )
    assert report["passed"], f"reference validator passed no checks at all: {report}"
    return report


def finalise_like_the_guide(zv, path):
    """The finalisation step of the HPC guide (write_partition.py /
    mpi_write.py): open r+, write multiscales, consolidate."""
    root = zv.open_store(str(path), mode="r+")
    assert isinstance(root, zarr.Group), f"open_store returned {type(root)!r}, not a zarr.Group"
    zv.write_multiscale_metadata(root)
    zarr.consolidate_metadata(root.store)


# The reference's compressor= choices beyond its presets: a list of the codecs
# after the serializer. zarr-python verifies every crc32c it reads.
ZSTD3_CRC = [{"name": "zstd", "configuration": {"level": 3, "checksum": False}}, {"name": "crc32c"}]
GZIP1_CRC = [{"name": "gzip", "configuration": {"level": 1}}, {"name": "crc32c"}]
CRC_ALONE = [{"name": "crc32c"}]
CODEC_LISTS = {"zstd3-crc32c": ZSTD3_CRC, "gzip1-crc32c": GZIP1_CRC, "crc32c": CRC_ALONE}


def _requested_names(compressor) -> set[str]:
    if compressor in (None, "none"):
        return set()
    if isinstance(compressor, str):
        return {compressor}
    return {c["name"] for c in compressor}


def _codec_names(codecs) -> set[str]:
    """Names of all codecs, including those nested inside sharding_indexed."""
    names = set()
    for codec in codecs:
        names.add(codec.get("name"))
        config = codec.get("configuration") or {}
        for key in ("codecs", "index_codecs"):
            names |= _codec_names(config.get(key) or [])
    return names


def sample_3d(rng, n=4000):
    """3-D float32 points with negative coordinates, plus points exactly on
    chunk boundaries (in both signs)."""
    positions, attributes = make_points(rng, n, (-600.0, -300.0, -900.0), (900.0, 700.0, 400.0))
    # Exact chunk-boundary and bin-boundary coordinates.
    positions[:6] = np.array(
        [
            [0.0, 0.0, 0.0],
            [-250.0, 250.0, -500.0],
            [250.0, -250.0, 125.0],
            [-125.0, -0.0, 375.0],
            [500.0, 500.0, -750.0],
            [-600.0, -300.0, -900.0],
        ],
        dtype=np.float32,
    )
    # A duplicated row: multisets must keep both copies.
    positions[6] = positions[7]
    attributes["intensity"][6] = attributes["intensity"][7]
    attributes["rgb"][6] = attributes["rgb"][7]
    return positions, attributes


# --------------------------------------------------------------------------
# Environment sanity
# --------------------------------------------------------------------------

def test_zarr_python_is_3_1():
    assert zarr.__version__.startswith("3.1."), f"the test environment must use zarr 3.1.x, has {zarr.__version__}"


def test_reference_is_isolated(reference, zv):
    info = reference.version()
    assert info["version"] == "0.9.2"
    ours = zv.package.__file__
    assert ours != info["module"], "the reference and our package resolved to the same file"
    assert hasattr(zv, "write_points_partition")


# --------------------------------------------------------------------------
# Our one-shot writes, read and validated by the reference
# --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "compressor", [None, "none", "zstd", "blosc", "gzip", *CODEC_LISTS.values()],
    ids=["None", "none", "zstd", "blosc", "gzip", *CODEC_LISTS],
)
def test_one_shot_3d_read_by_reference(zv, reference, rng, store_path, compressor):
    points = sample_3d(rng)
    summary = zv.write_points(
        str(store_path), points[0], chunk_shape=CHUNK3, bin_shape=BIN3,
        attributes=points[1], compressor=compressor,
    )
    assert summary["vertex_count"] == len(points[0])
    assert summary["chunk_count"] == len(chunk_keys(points[0], CHUNK3))

    assert_same_multiset(reference.read(store_path), points, "reference read of our store")
    assert_valid(reference, store_path)
    assert_same_multiset(read_ours(zv, store_path), points, "our read of our store")

    # The requested codec really is in the array metadata of the cells.
    meta = json.loads((store_path / "0" / "vertices" / "zarr.json").read_text())
    codec_names = _codec_names(meta.get("codecs", []))
    assert codec_names - {"vlen-bytes"} == _requested_names(compressor), (
        f"compressor={compressor!r} but vertices codecs are {meta.get('codecs')}"
    )
    if not isinstance(compressor, str) and compressor is not None:
        # The list's configurations land as given (zarr-python writes crc32c with its name alone).
        assert meta["codecs"][1:] == [dict(c) for c in compressor], meta["codecs"]


def test_one_shot_2d_read_by_reference(zv, reference, rng, store_path):
    positions = uniform_points(rng, 3000, (-500.0, -350.0), (500.0, 650.0))
    positions[:3] = np.array([[0.0, 0.0], [-200.0, 200.0], [-500.0, -350.0]], dtype=np.float32)
    attributes = make_attributes(rng, len(positions))
    summary = zv.write_points(
        str(store_path), positions, chunk_shape=(200.0, 200.0), bin_shape=(100.0, 100.0),
        attributes=attributes,
    )
    assert summary["vertex_count"] == len(positions)
    assert summary["chunk_count"] == len(chunk_keys(positions, (200.0, 200.0)))
    assert_same_multiset(reference.read(store_path), (positions, attributes), "reference read of our 2-D store")
    assert_valid(reference, store_path)
    assert_same_multiset(read_ours(zv, store_path), (positions, attributes), "our read of our 2-D store")


def test_one_shot_without_bin_shape_and_float64_attribute(zv, reference, rng, store_path):
    positions = uniform_points(rng, 2000, (-1000.0, -1000.0, -1000.0), (1000.0, 1000.0, 1000.0))
    attributes = {
        "weight": rng.standard_normal(len(positions)),  # float64 (N,)
        "label": rng.integers(-(2**31), 2**31 - 1, size=len(positions), dtype=np.int32),
        "normal": rng.standard_normal((len(positions), 3)).astype(np.float32),
    }
    zv.write_points(str(store_path), positions, chunk_shape=(300.0, 300.0, 300.0), attributes=attributes)
    assert_same_multiset(reference.read(store_path), (positions, attributes), "reference read")
    assert_valid(reference, store_path)


def test_bbox_reads_of_our_store_agree_with_numpy(zv, reference, rng, store_path):
    positions, attributes = sample_3d(rng)
    lo, hi = (-200.0, -100.0, -500.0), (300.0, 400.0, 125.0)
    # Points exactly on every face of the box must be included (inclusive).
    positions[10:13] = np.array([lo, hi, [-200.0, 400.0, 0.0]], dtype=np.float32)
    zv.write_points(str(store_path), positions, chunk_shape=CHUNK3, bin_shape=BIN3, attributes=attributes)
    expected = select((positions, attributes), bbox_mask(positions, lo, hi))
    assert 0 < len(expected[0]) < len(positions)
    assert_same_multiset(reference.read(store_path, bbox=(lo, hi)), expected, "reference bbox read of our store")
    assert_same_multiset(read_ours(zv, store_path, bbox=(lo, hi)), expected, "our bbox read of our store")


# --------------------------------------------------------------------------
# Our partitioned writes, finalised as in the HPC guide
# --------------------------------------------------------------------------

def _write_slabs(zv, path, points, *, axis, edges, chunk_shape, bin_shape=None, attr_names=None):
    """One write_points_partition per slab [edges[i], edges[i+1]) on ``axis``."""
    positions, attributes = points
    if attr_names is not None:
        attributes = {k: attributes[k] for k in attr_names}
    range_kw = {0: "x_range", 1: "y_range", 2: "z_range"}[axis]
    summaries = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = slab_mask(positions, axis, lo, hi)
        summaries.append(
            zv.write_points_partition(
                str(path), positions[mask], chunk_shape=chunk_shape, bin_shape=bin_shape,
                attributes={k: v[mask] for k, v in attributes.items()}, **{range_kw: (lo, hi)},
            )
        )
        assert summaries[-1]["vertex_count"] == int(mask.sum())
    return summaries


PARTITION_CASES = {
    # 4 z-slabs aligned with the 250-unit chunk boundaries.
    "aligned-z": dict(axis=2, edges=[0.0, 250.0, 500.0, 750.0, 1000.0], chunk_shape=CHUNK3,
                      bin_shape=BIN3, lo=(0.0, 0.0, 0.0), hi=(1000.0, 1000.0, 1000.0), n=6000),
    # 4 x-slabs of 312.5 over 250-unit chunks: boundaries fall inside chunks.
    "unaligned-x": dict(axis=0, edges=[0.0, 312.5, 625.0, 937.5, 1250.0], chunk_shape=CHUNK3,
                        bin_shape=BIN3, lo=(0.0, 0.0, 0.0), hi=(1250.0, 1000.0, 1000.0), n=6000),
    # The MPI sample of the guide: 16 ranks x 625 over 500-unit chunks.
    "seed-16-ranks": dict(axis=0, edges=[625.0 * i for i in range(17)], chunk_shape=(500.0, 500.0, 500.0),
                          bin_shape=BIN3, lo=(0.0, 0.0, 0.0), hi=(10_000.0, 1000.0, 1000.0), n=3000,
                          attr_names=["intensity"]),
}


@pytest.mark.parametrize("case", sorted(PARTITION_CASES))
def test_partitioned_write_read_by_reference(zv, reference, rng, store_path, case):
    spec = PARTITION_CASES[case]
    points = make_points(rng, spec["n"], spec["lo"], spec["hi"])
    if spec.get("attr_names"):
        points = (points[0], {k: points[1][k] for k in spec["attr_names"]})
    summaries = _write_slabs(
        zv, store_path, points, axis=spec["axis"], edges=spec["edges"],
        chunk_shape=spec["chunk_shape"], bin_shape=spec["bin_shape"],
    )
    assert sum(s["vertex_count"] for s in summaries) == len(points[0])
    ids = [s["partition_id"] for s in summaries]
    assert len(set(map(str, ids))) == len(ids), f"partition ids are not distinct: {ids}"

    finalise_like_the_guide(zv, store_path)

    assert_same_multiset(reference.read(store_path), points, f"reference read of partitioned store ({case})")
    assert_valid(reference, store_path)
    assert_same_multiset(read_ours(zv, store_path), points, f"our read of partitioned store ({case})")


# --------------------------------------------------------------------------
# Reference-written stores, read by us
# --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "compressor,bin_shape",
    [(None, BIN3), ("zstd", BIN3), ("zstd", None), ("blosc", BIN3), (None, None),
     ([{"name": "gzip", "configuration": {"level": 5}}], BIN3), *((c, BIN3) for c in CODEC_LISTS.values())],
    ids=["plain-bins", "zstd-bins", "zstd-nobins", "blosc-bins", "plain-nobins",
         "gzip-bins", *(f"{name}-bins" for name in CODEC_LISTS)],
)
def test_reference_store_read_by_us(zv, reference, rng, store_path, compressor, bin_shape):
    positions, attributes = sample_3d(rng, n=3000)
    attributes["count"] = rng.integers(0, 1000, size=len(positions), dtype=np.int64)
    summary = reference.write(
        store_path, positions, chunk_shape=CHUNK3, bin_shape=bin_shape,
        attributes=attributes, compressor=compressor,
    )
    assert summary["vertex_count"] == len(positions)
    assert_same_multiset(read_ours(zv, store_path), (positions, attributes), "our read of a reference store")

    # Reading a subset of attributes by name.
    pos, attrs = read_ours(zv, store_path, attributes=["rgb"])
    assert sorted(attrs) == ["rgb"]
    assert_same_multiset((pos, attrs), (positions, {"rgb": attributes["rgb"]}), "our read of one attribute")

    lo, hi = (-250.0, -250.0, -500.0), (250.0, 500.0, 0.0)
    expected = select((positions, attributes), bbox_mask(positions, lo, hi))
    assert 0 < len(expected[0]) < len(positions)
    assert_same_multiset(read_ours(zv, store_path, bbox=(lo, hi)), expected, "our bbox read of a reference store")
    assert_same_multiset(reference.read(store_path, bbox=(lo, hi)), expected, "reference bbox read of its store")


def test_reference_2d_store_read_by_us(zv, reference, rng, store_path):
    positions = uniform_points(rng, 2000, (-700.0, -100.0), (300.0, 900.0))
    attributes = make_attributes(rng, len(positions))
    reference.write(store_path, positions, chunk_shape=(200.0, 200.0), bin_shape=(50.0, 50.0),
                     attributes=attributes, compressor="zstd")
    assert_same_multiset(read_ours(zv, store_path), (positions, attributes), "our read of a reference 2-D store")


# --------------------------------------------------------------------------
# zarr-python opens every array we write
# --------------------------------------------------------------------------

def _walk_and_read_all(path):
    group = zarr.open_group(str(path), mode="r")
    arrays = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's "unstable specification" notices for vlen-bytes
        for name, node in group.members(max_depth=None):
            if isinstance(node, zarr.Array):
                arrays[name] = node[...]
    return group, arrays


def _assert_zarr_view_matches(path, positions, attribute_names):
    group, arrays = _walk_and_read_all(path)
    expected = {"0/vertices", "0/vertex_fragments"} | {f"0/vertex_attributes/{n}" for n in attribute_names}
    missing = expected - set(arrays)
    assert not missing, f"zarr-python did not find arrays {sorted(missing)}; found {sorted(arrays)}"
    # Every vertices cell holds raw rows (N_k x D values); together they hold all N rows.
    cells = arrays["0/vertices"]
    total = sum(len(c) for c in np.asarray(cells, dtype=object).ravel() if c is not None)
    assert total == positions.shape[0] * positions.shape[1] * positions.dtype.itemsize, (
        f"vertices cells hold {total} bytes in total, expected {positions.size * positions.dtype.itemsize}"
    )
    level_attrs = group["0"].attrs.asdict()
    assert level_attrs["zarr_vectors_level"]["vertex_count"] == positions.shape[0]


@pytest.mark.parametrize("compressor", [None, "zstd", "blosc", "gzip", ZSTD3_CRC, CRC_ALONE],
                         ids=["None", "zstd", "blosc", "gzip", "zstd3-crc32c", "crc32c"])
def test_zarr_python_reads_every_array_one_shot(zv, rng, store_path, compressor):
    positions, attributes = sample_3d(rng, n=2000)
    zv.write_points(str(store_path), positions, chunk_shape=CHUNK3, bin_shape=BIN3,
                    attributes=attributes, compressor=compressor)
    _assert_zarr_view_matches(store_path, positions, attributes)


def test_zarr_python_reads_every_array_partitioned(zv, rng, store_path):
    spec = PARTITION_CASES["unaligned-x"]
    points = make_points(rng, 3000, spec["lo"], spec["hi"])
    _write_slabs(zv, store_path, points, axis=0, edges=spec["edges"], chunk_shape=CHUNK3, bin_shape=BIN3)
    finalise_like_the_guide(zv, store_path)
    _assert_zarr_view_matches(store_path, points[0], points[1])


def test_multiset_helper_detects_differences(rng):
    """The comparison used everywhere above must be able to fail."""
    from helpers import multiset_difference

    points = make_points(rng, 100, (0, 0, 0), (10, 10, 10))
    perm = rng.permutation(100)
    shuffled = select(points, perm)
    assert multiset_difference(shuffled, points) is None
    # One attribute value changed.
    changed = (points[0].copy(), {k: v.copy() for k, v in points[1].items()})
    changed[1]["rgb"][5, 1] ^= 1
    assert multiset_difference(changed, points) is not None
    # A duplicated row replacing another.
    dup = select(points, np.r_[np.arange(99), 0])
    message = multiset_difference(dup, points)
    assert message is not None and "duplicated rows: actual 1" in message
    # Extra row.
    extra = concat([points, select(points, np.arange(1))])
    assert "row counts differ" in multiset_difference(extra, points)
    # dtype change.
    assert "dtype" in multiset_difference((points[0].astype(np.float64), points[1]), points)


def test_bool_and_float16_attributes_cross_both_ways(zv, zvf_cli, reference, rng, tmp_path):
    # The reference writes bool and float16 attributes; we write and read both,
    # bit for bit, and each side's reader and validator accepts the other's store.
    positions = uniform_points(rng, 3000, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    half = rng.standard_normal(3000).astype(np.float16)
    half[:4] = [np.inf, -0.0, 6.1e-5, 65504.0]  # infinity, signed zero, a subnormal, the largest half
    attrs = {"flag": rng.random(3000) > 0.5, "half": half}
    ours, theirs = tmp_path / "ours.zarr", tmp_path / "theirs.zarr"
    zv.write_points(str(ours), positions, chunk_shape=CHUNK3, bin_shape=BIN3, attributes=attrs)
    reference.write(theirs, positions, chunk_shape=CHUNK3, bin_shape=BIN3, attributes=attrs)

    assert_same_multiset(reference.read(ours), (positions, attrs), "reference read of our bool/float16 store")
    assert_valid(reference, ours, level=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is left out any more
        got = read_ours(zv, str(theirs))
    assert got[1]["flag"].dtype == np.bool_ and got[1]["half"].dtype == np.float16
    assert_same_multiset(got, (positions, attrs), "our read of the reference's bool/float16 store")
    from zarr_vectors.validate import validate

    report = validate(str(theirs), level=5)
    assert report.ok and not report.findings, [f.message for f in report.findings]
    info = {a["name"]: a for a in zv.package.store_info(str(theirs))["attributes"]}
    assert (info["flag"]["dtype"], info["half"]["dtype"]) == ("bool", "float16")
    assert info["flag"]["note"] == info["half"]["note"] == ""

    # The CLI writes them as 0/1 and as the shortest decimal that reads back as
    # the same float16, so its CSV round-trips through --attr-dtype.
    out = tmp_path / "q.csv"
    import subprocess

    subprocess.run([zvf_cli, "query", str(theirs), "-o", str(out)], check=True, capture_output=True)
    table = np.genfromtxt(out, delimiter=",", names=True)
    assert set(np.unique(table["flag"])) == {0.0, 1.0}
    csv_positions = np.stack([table[c] for c in "xyz"], axis=1).astype(np.float32)
    csv_attrs = {"flag": table["flag"].astype(bool), "half": table["half"].astype(np.float16)}
    assert_same_multiset((csv_positions, csv_attrs), (positions, attrs), "zvf query CSV of bool/float16")


def test_reference_attributes_we_cannot_decode_do_not_lock_the_store(zv, reference, rng, store_path):
    # String attributes come as dictionary codes with their categories: we decode
    # them, as the reference's reader does. An attribute of a dtype zvf does not
    # know (here a hand-edited one) is left out of reads with a warning, and
    # refused only when asked for by name.
    positions = uniform_points(rng, 3000, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    attrs = {
        "f": rng.standard_normal(3000).astype(np.float32),
        "odd": rng.standard_normal(3000).astype(np.float32),
        "gene": np.array(["a", "bb", "c"])[rng.integers(0, 3, 3000)],
    }
    reference.write(store_path, positions, chunk_shape=(250.0,) * 3, bin_shape=(125.0,) * 3, attributes=attrs)
    meta_path = store_path / "0" / "vertex_attributes" / "odd" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    assert meta["attributes"]["dtype"] == "float32"
    meta["attributes"]["dtype"] = "complex64"
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="'odd' \\(dtype 'complex64'\\)"):
        ours = zv.read_points(str(store_path))
    assert sorted(ours["attributes"]) == ["f", "gene"]
    theirs = reference.read(store_path, attrs=["f", "gene"])
    assert_same_multiset((np.asarray(ours["positions"]), ours["attributes"]), theirs, "reference store, decodable attributes")
    assert set(np.unique(ours["attributes"]["gene"])) == {"a", "bb", "c"}
    with pytest.raises(zv.errors.InvalidInputError, match=all_of("'odd'", "complex64", "cannot read")):
        zv.read_points(str(store_path), attributes=["odd"])
    notes = {a["name"]: a["note"] for a in zv.package.store_info(str(store_path))["attributes"]}
    assert notes["gene"] == "dictionary: 3 categories" and "complex64" in notes["odd"] and notes["f"] == ""


def test_cli_query_writes_string_attributes_as_their_categories(zv, zvf_cli, reference, rng, tmp_path):
    # The reference stores string attributes as dictionary codes. `zvf query`
    # writes the strings into CSV (quoted where CSV needs it), and the codes plus
    # a categories list into NPY.
    import csv
    import subprocess

    positions = uniform_points(rng, 500, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))
    names = np.array(["alpha", "b,c", 'say "hi"', "two\nlines"])
    gene = names[rng.integers(0, len(names), 500)]
    store = tmp_path / "theirs.zarr"
    reference.write(store, positions, chunk_shape=(250.0,) * 3, bin_shape=(125.0,) * 3, attributes={"gene": gene})
    out = tmp_path / "q.csv"
    subprocess.run([zvf_cli, "query", str(store), "-o", str(out)], check=True, capture_output=True)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    got_positions = np.array([[float(r[c]) for c in "xyz"] for r in rows], dtype=np.float32)
    assert_same_multiset((got_positions, {"gene": np.array([r["gene"] for r in rows])}),
                         (positions, {"gene": gene}), "zvf query CSV of a dictionary attribute")

    proc = subprocess.run([zvf_cli, "query", str(store), "-o", str(tmp_path / "q.npy")],
                          check=True, capture_output=True, text=True)
    categories = json.loads((tmp_path / "q.gene.categories.json").read_text())
    codes = np.load(tmp_path / "q.gene.npy")
    assert_same_multiset((np.load(tmp_path / "q.npy"), {"gene": np.array(categories)[codes]}),
                         (positions, {"gene": gene}), "zvf query NPY codes + categories")
    assert "'gene'" in proc.stderr and "q.gene.categories.json" in proc.stderr, proc.stderr


_REFERENCE_LAYOUTS = """
import sys, numpy as np
from zarr_vectors.types.points import write_points
rng = np.random.default_rng(3)
p = rng.uniform(0, 1000, (3000, 3)).astype(np.float32)
if sys.argv[2] == "shard":
    write_points(sys.argv[1], p, vertex_attributes={"f": rng.random(3000).astype(np.float32)},
                 chunk_shape=(250.0,) * 3, bin_shape=(125.0,) * 3, shard_shape=2)
elif sys.argv[2] == "lz4":  # a codec zarr-python has through numcodecs, outside the Zarr v3 core set
    write_points(sys.argv[1], p, chunk_shape=(250.0,) * 3, bin_shape=(125.0,) * 3,
                 compressor=[{"name": "numcodecs.lz4", "configuration": {"acceleration": 1}}])
else:
    write_points(sys.argv[1], p, vertex_attributes={"g": rng.integers(0, 3, 3000).astype(np.int32)},
                 chunk_shape=(250.0,) * 3, chunk_by_attribute="g")
"""


@pytest.mark.parametrize("layout,words", [("shard", "sharded"), ("by-attribute", "chunked by attribute"),
                                          ("lz4", "unsupported codec 'numcodecs.lz4'")])
def test_reference_layouts_we_do_not_read_are_named_unsupported(zv, zvf_cli, reference, store_path, layout, words):
    # Valid ZV stores (the reference validator accepts them) that zvf does not
    # read: an "unsupported" error (CLI exit 8), never "corrupt", and a validation
    # that warns instead of calling them invalid.
    import subprocess

    from conftest import _subprocess_env
    from zarr_vectors.validate import validate

    proc = subprocess.run([str(reference.python), "-c", _REFERENCE_LAYOUTS, str(store_path), layout],
                          env=_subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert reference.validate(store_path, level=5)["errors"] == []
    with pytest.raises(zv.errors.UnsupportedStoreError, match=words):
        zv.read_points(str(store_path))
    assert issubclass(zv.errors.UnsupportedStoreError, NotImplementedError)
    for args in (["info", str(store_path)], ["query", str(store_path), "-o", str(store_path) + ".csv"]):
        cli = subprocess.run([zvf_cli, *args], capture_output=True, text=True, timeout=120)
        assert cli.returncode == 8 and words in cli.stderr, (args, cli.returncode, cli.stderr)
    report = validate(str(store_path), level=5)
    assert report.ok and any(words in f.message for f in report.findings), [f.message for f in report.findings]
