"""The partitioned-write protocol: write_points_partition + finalisation.

Partitions declare half-open ranges (x_range / y_range / z_range / bbox);
nothing they write is visible to readers until finalisation (``finalise`` or
``write_multiscale_metadata`` on an r+ group).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    all_of,
    assert_same_multiset,
    chunk_keys,
    concat,
    diff_trees,
    list_files,
    make_points,
    select,
    slab_mask,
    tree_digest,
)

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)
Z_EDGES = [0.0, 250.0, 500.0, 750.0, 1000.0]
X_EDGES_UNALIGNED = [0.0, 312.5, 625.0, 937.5, 1250.0]
RANGE_KW = {0: "x_range", 1: "y_range", 2: "z_range"}


def read_ours(zv, path, **kwargs):
    result = zv.read_points(str(path), **kwargs)
    return np.asarray(result["positions"]), {k: np.asarray(v) for k, v in result["attributes"].items()}


def slab(points, axis, lo, hi):
    return select(points, slab_mask(points[0], axis, lo, hi))


def write_slab(zv, path, points, axis, lo, hi, *, chunk_shape=CHUNK, bin_shape=BIN, **extra):
    part = slab(points, axis, lo, hi)
    summary = zv.write_points_partition(
        str(path), part[0], chunk_shape=chunk_shape, bin_shape=bin_shape,
        attributes=part[1], **{RANGE_KW[axis]: (lo, hi)}, **extra,
    )
    assert summary["vertex_count"] == len(part[0])
    return summary


def write_slabs(zv, path, points, axis=2, edges=Z_EDGES, **kw):
    return [write_slab(zv, path, points, axis, lo, hi, **kw) for lo, hi in zip(edges[:-1], edges[1:])]


def z_points(rng, n=4000):
    return make_points(rng, n, (0.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))


def x_points(rng, n=4000):
    return make_points(rng, n, (0.0, 0.0, 0.0), (1250.0, 1000.0, 1000.0))


def ids_of(summaries):
    return [s["partition_id"] for s in summaries]


def assert_invisible(zv, path):
    """Before finalisation a reader sees no points (or no store at all)."""
    try:
        result = zv.read_points(str(path))
    except zv.errors.StoreNotFoundError:
        return
    n = len(result["positions"])
    assert n == 0, f"{n} points are visible to readers before finalisation"


# --------------------------------------------------------------------------
# Finalisation basics
# --------------------------------------------------------------------------

def test_partitions_invisible_until_finalised_then_exact(zv, rng, store_path):
    points = z_points(rng)
    summaries = write_slabs(zv, store_path, points)
    assert_invisible(zv, store_path)

    result = zv.finalise(str(store_path))
    assert result["changed"] is True
    assert sorted(map(str, result["merged"])) == sorted(map(str, ids_of(summaries)))
    assert result["vertex_count"] == len(points[0])
    assert result["chunk_count"] == len(chunk_keys(points[0], CHUNK))
    assert not result["gaps"], f"contiguous slabs reported gaps: {result['gaps']}"
    lo, hi = (np.asarray(b, dtype=np.float64) for b in result["bounds"])
    assert np.all(lo <= points[0].min(axis=0)) and np.all(hi >= points[0].max(axis=0)), result["bounds"]

    assert_same_multiset(read_ours(zv, store_path), points, "finalised partitioned store")


def test_finalise_twice_is_byte_identical_noop(zv, rng, store_path):
    points = x_points(rng)
    write_slabs(zv, store_path, points, axis=0, edges=X_EDGES_UNALIGNED)
    first = zv.finalise(str(store_path))
    assert first["changed"] is True
    before = tree_digest(store_path)

    second = zv.finalise(str(store_path))
    assert second["changed"] is False
    assert list(second["merged"]) == []
    after = tree_digest(store_path)
    assert after == before, f"second finalise modified the store: {diff_trees(before, after)}"
    assert_same_multiset(read_ours(zv, store_path), points)


def test_guide_finalisation_then_finalise_is_noop(zv, rng, store_path):
    """write_multiscale_metadata finalises pending partitions (HPC guide)."""
    import zarr

    points = z_points(rng, 2000)
    write_slabs(zv, store_path, points)
    root = zv.open_store(str(store_path), mode="r+")
    zv.write_multiscale_metadata(root)
    zarr.consolidate_metadata(root.store)
    assert_same_multiset(read_ours(zv, store_path), points, "after write_multiscale_metadata")
    again = zv.finalise(str(store_path))
    assert list(again["merged"]) == [], again
    assert_same_multiset(read_ours(zv, store_path), points, "after a later finalise")
    # The group stands in for the path in every entry point.
    got = zv.read_points(root)
    assert_same_multiset((got["positions"], got["attributes"]), points, "read through the group")
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    pyramid = build_pyramid(root, factors=[(2.0, 1.0)])
    assert pyramid["changed"] is True and len(pyramid["levels"]) == 1, pyramid
    assert zv.read_points(root, level=1)["vertex_count"] > 0


def test_partitions_added_after_finalisation(zv, rng, store_path):
    points = z_points(rng)
    first = write_slabs(zv, store_path, points, edges=Z_EDGES[:3])
    zv.finalise(str(store_path))
    lower = slab(points, 2, 0.0, 500.0)
    assert_same_multiset(read_ours(zv, store_path), lower, "first half")

    second = write_slabs(zv, store_path, points, edges=Z_EDGES[2:])
    assert_same_multiset(read_ours(zv, store_path), lower, "new partitions must stay invisible")
    result = zv.finalise(str(store_path))
    assert result["changed"] is True
    assert sorted(map(str, result["merged"])) == sorted(map(str, ids_of(second)))
    assert not set(map(str, ids_of(first))) & set(map(str, ids_of(second)))
    assert result["vertex_count"] == len(points[0])
    assert_same_multiset(read_ours(zv, store_path), points, "all partitions")


def test_partition_summary_counts(zv, rng, make_store_path):
    """Chunks wholly inside a partition's range are written in place; chunks
    that straddle a range boundary are staged."""
    points = z_points(rng)
    aligned = write_slabs(zv, make_store_path("aligned"), points)
    for s, (lo, hi) in zip(aligned, zip(Z_EDGES[:-1], Z_EDGES[1:])):
        n_chunks = len(chunk_keys(slab(points, 2, lo, hi)[0], CHUNK))
        assert s["chunks_staged"] == 0, s
        assert s["chunks_in_place"] == n_chunks, s

    xpts = x_points(rng)
    unaligned = write_slabs(zv, make_store_path("unaligned"), xpts, axis=0, edges=X_EDGES_UNALIGNED)
    for s, (lo, hi) in zip(unaligned, zip(X_EDGES_UNALIGNED[:-1], X_EDGES_UNALIGNED[1:])):
        n_chunks = len(chunk_keys(slab(xpts, 0, lo, hi)[0], CHUNK))
        assert s["chunks_in_place"] + s["chunks_staged"] == n_chunks, s
    assert sum(s["chunks_staged"] for s in unaligned) > 0


# --------------------------------------------------------------------------
# Re-running partitions
# --------------------------------------------------------------------------

def test_rerun_partition_before_finalisation(zv, rng, store_path):
    points = x_points(rng)
    summaries = write_slabs(zv, store_path, points, axis=0, edges=X_EDGES_UNALIGNED)
    again = write_slab(zv, store_path, points, 0, X_EDGES_UNALIGNED[1], X_EDGES_UNALIGNED[2])
    assert str(again["partition_id"]) == str(summaries[1]["partition_id"])
    result = zv.finalise(str(store_path))
    assert result["vertex_count"] == len(points[0])
    assert_same_multiset(read_ours(zv, store_path), points, "re-run partition (before finalisation)")


@pytest.mark.parametrize("axis,edges", [(2, Z_EDGES), (0, X_EDGES_UNALIGNED)], ids=["aligned", "unaligned"])
def test_rerun_partition_after_finalisation(zv, reference, rng, store_path, axis, edges):
    points = z_points(rng) if axis == 2 else x_points(rng)
    write_slabs(zv, store_path, points, axis=axis, edges=edges)
    zv.finalise(str(store_path))
    assert_same_multiset(read_ours(zv, store_path), points, "after first finalisation")

    write_slab(zv, store_path, points, axis, edges[1], edges[2])
    write_slab(zv, store_path, points, axis, edges[0], edges[1])
    assert_same_multiset(read_ours(zv, store_path), points, "re-run staged, before second finalisation")

    result = zv.finalise(str(store_path))
    assert result["vertex_count"] == len(points[0])
    assert_same_multiset(read_ours(zv, store_path), points, "after re-run and second finalisation")
    report = reference.validate(store_path)
    assert report["errors"] == [], report["errors"]
    assert_same_multiset(reference.read(store_path), points, "reference read after re-run")


# --------------------------------------------------------------------------
# Range violations and overlaps
# --------------------------------------------------------------------------

def _bad_range_partition(rng, case):
    """(positions, attributes, range kwargs, bad value regex) with one point
    violating the declared range."""
    points = make_points(rng, 200, (0.0, 0.0, 250.0), (1000.0, 1000.0, 500.0))
    pos = points[0]
    if case == "above":
        pos[17, 2] = 612.25
        return points, {"z_range": (250.0, 500.0)}, r"612\.25"
    if case == "at-upper-bound":  # half-open: hi itself is outside
        pos[17, 2] = 500.0
        return points, {"z_range": (250.0, 500.0)}, r"500(\.0*)?\b"
    if case == "below":
        pos[17, 2] = -3.5
        return points, {"z_range": (250.0, 500.0)}, r"-3\.5"
    if case == "bbox":
        pos[17, 0] = 1000.0
        return points, {"bbox": ((0.0, 0.0, 250.0), (1000.0, 1000.0, 500.0))}, r"1000(\.0*)?\b"
    raise AssertionError(case)


BAD_RANGE_CASES = ["above", "at-upper-bound", "below", "bbox"]


@pytest.mark.parametrize("case", BAD_RANGE_CASES)
def test_point_outside_range_fresh_store(zv, rng, store_path, case):
    points, range_kw, value = _bad_range_partition(rng, case)
    with pytest.raises(zv.errors.InvalidInputError, match=value):
        zv.write_points_partition(str(store_path), points[0], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=points[1], **range_kw)
    assert not store_path.exists(), f"rejected partition left files behind: {list_files(store_path)}"


@pytest.mark.parametrize("case", BAD_RANGE_CASES)
def test_point_outside_range_existing_store(zv, rng, store_path, case):
    good = make_points(rng, 300, (0.0, 0.0, 0.0), (1000.0, 1000.0, 250.0))
    zv.write_points_partition(str(store_path), good[0], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes=good[1], z_range=(0.0, 250.0))
    before = tree_digest(store_path)
    points, range_kw, value = _bad_range_partition(rng, case)
    with pytest.raises(zv.errors.InvalidInputError, match=value):
        zv.write_points_partition(str(store_path), points[0], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=points[1], **range_kw)
    after = tree_digest(store_path)
    assert after == before, f"rejected partition changed the store: {diff_trees(before, after)}"
    zv.finalise(str(store_path))
    assert_same_multiset(read_ours(zv, store_path), good, "only the valid partition")


OVERLAPS = {
    "same-axis": ({"z_range": (0.0, 500.0)}, {"z_range": (250.0, 750.0)}),
    "contained": ({"z_range": (0.0, 1000.0)}, {"z_range": (500.0, 750.0)}),
    "cross-axis": ({"z_range": (0.0, 500.0)}, {"x_range": (0.0, 500.0)}),
    "bbox": ({"bbox": ((0.0, 0.0, 0.0), (500.0, 500.0, 500.0))},
             {"bbox": ((499.0, 499.0, 499.0), (1000.0, 1000.0, 1000.0))}),
    "bbox-vs-range": ({"bbox": ((0.0, 0.0, 0.0), (500.0, 500.0, 500.0))}, {"y_range": (250.0, 260.0)}),
}


def _points_in(rng, n, range_kw):
    lo = np.array([0.0, 0.0, 0.0])
    hi = np.array([1000.0, 1000.0, 1000.0])
    for axis, key in RANGE_KW.items():
        if key in range_kw:
            lo[axis], hi[axis] = range_kw[key]
    if "bbox" in range_kw:
        lo, hi = (np.asarray(c, dtype=np.float64) for c in range_kw["bbox"])
    return make_points(rng, n, lo, hi)


@pytest.mark.parametrize("case", sorted(OVERLAPS))
def test_overlapping_partitions_conflict(zv, rng, store_path, case):
    first_kw, second_kw = OVERLAPS[case]
    first = _points_in(rng, 300, first_kw)
    second = _points_in(rng, 300, second_kw)
    zv.write_points_partition(str(store_path), first[0], chunk_shape=CHUNK, bin_shape=BIN,
                              attributes=first[1], **first_kw)
    before = tree_digest(store_path)
    with pytest.raises(zv.errors.PartitionConflictError):
        zv.write_points_partition(str(store_path), second[0], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=second[1], **second_kw)
    after = tree_digest(store_path)
    assert after == before, f"conflicting partition changed the store: {diff_trees(before, after)}"
    zv.finalise(str(store_path))
    assert_same_multiset(read_ours(zv, store_path), first, "only the first partition")


@pytest.mark.parametrize(
    "first_kw,second_kw",
    [
        ({"z_range": (0.0, 500.0)}, {"z_range": (500.0, 1000.0)}),
        ({"x_range": (0.0, 312.5)}, {"x_range": (312.5, 1000.0)}),
        ({"bbox": ((0.0, 0.0, 0.0), (500.0, 1000.0, 1000.0))}, {"bbox": ((500.0, 0.0, 0.0), (1000.0, 1000.0, 1000.0))}),
    ],
    ids=["z", "x-unaligned", "bbox"],
)
def test_adjacent_partitions_do_not_conflict(zv, rng, store_path, first_kw, second_kw):
    first = _points_in(rng, 300, first_kw)
    second = _points_in(rng, 300, second_kw)
    for pts, kw in ((first, first_kw), (second, second_kw)):
        zv.write_points_partition(str(store_path), pts[0], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes=pts[1], **kw)
    zv.finalise(str(store_path))
    assert_same_multiset(read_ours(zv, store_path), concat([first, second]))


# --------------------------------------------------------------------------
# Partitions that disagree
# --------------------------------------------------------------------------

def _disagreement(rng, field):
    """Two partitions (kwargs dicts) in z (0,500) and (500,1000) differing in
    one field, and a regex for the field's name."""
    a = _points_in(rng, 200, {"z_range": (0.0, 500.0)})
    b = _points_in(rng, 200, {"z_range": (500.0, 1000.0)})
    first = dict(positions=a[0], attributes=a[1], chunk_shape=CHUNK, bin_shape=BIN, z_range=(0.0, 500.0))
    second = dict(positions=b[0], attributes=dict(b[1]), chunk_shape=CHUNK, bin_shape=BIN, z_range=(500.0, 1000.0))
    if field == "chunk_shape":
        second["chunk_shape"] = (500.0, 500.0, 500.0)
        return first, second, r"chunk.?shape"
    if field == "bin_shape":
        second["bin_shape"] = (250.0, 250.0, 250.0)
        return first, second, r"bin.?shape"
    if field == "attribute-dtype":
        second["attributes"]["intensity"] = second["attributes"]["intensity"].astype(np.float64)
        return first, second, all_of("intensity", r"float64|dtype")
    if field == "attribute-width":
        second["attributes"]["rgb"] = np.concatenate(
            [second["attributes"]["rgb"], second["attributes"]["rgb"][:, :1]], axis=1)
        return first, second, "rgb"
    if field == "attribute-set":
        del second["attributes"]["rgb"]
        return first, second, "rgb"
    raise AssertionError(field)


@pytest.mark.parametrize("field", ["chunk_shape", "bin_shape", "attribute-dtype", "attribute-width", "attribute-set"])
def test_disagreeing_partitions_conflict(zv, rng, store_path, field):
    first, second, name = _disagreement(rng, field)
    zv.write_points_partition(str(store_path), first.pop("positions"), **first)
    before = tree_digest(store_path)
    try:
        zv.write_points_partition(str(store_path), second.pop("positions"), **second)
    except zv.errors.PartitionConflictError as exc:
        assert re.search(name, str(exc)), f"conflict message does not name {field}: {exc}"
        after = tree_digest(store_path)
        assert after == before, f"rejected partition changed the store: {diff_trees(before, after)}"
        return
    # Accepted at write time: finalisation must refuse, naming the field.
    with pytest.raises(zv.errors.PartitionConflictError, match=name):
        zv.finalise(str(store_path))


# --------------------------------------------------------------------------
# Unfinished partitions
# --------------------------------------------------------------------------

@pytest.mark.parametrize("finaliser", ["finalise", "write_multiscale_metadata"])
def test_partition_without_manifest_blocks_finalisation(zv, rng, store_path, finaliser):
    points = z_points(rng, 2000)
    summaries = write_slabs(zv, store_path, points, edges=Z_EDGES[:4])
    victim = str(summaries[1]["partition_id"])
    manifest = store_path / ".zvf" / "partitions" / victim / "manifest.json"
    assert manifest.is_file(), f"expected a partition manifest at {manifest}; .zvf holds {list_files(store_path / '.zvf')}"
    manifest.unlink()

    with pytest.raises(zv.errors.PartitionConflictError, match=re.escape(victim)):
        if finaliser == "finalise":
            zv.finalise(str(store_path))
        else:
            zv.write_multiscale_metadata(zv.open_store(str(store_path), mode="r+"))
    assert_invisible(zv, store_path)


# --------------------------------------------------------------------------
# Gaps between declared ranges
# --------------------------------------------------------------------------

def test_gap_between_partitions(zv, rng, store_path):
    points = z_points(rng, 2000)
    kept = concat([slab(points, 2, 0.0, 250.0), slab(points, 2, 500.0, 750.0)])
    write_slab(zv, store_path, points, 2, 0.0, 250.0)
    write_slab(zv, store_path, points, 2, 500.0, 750.0)
    with pytest.raises(zv.errors.ZvfError, match=r"250|500"):
        zv.finalise(str(store_path))
    assert_invisible(zv, store_path)
    result = zv.finalise(str(store_path), allow_gaps=True)
    assert result["gaps"], "a 250..500 hole between z-slabs was not reported"
    assert result["vertex_count"] == len(kept[0])
    assert_same_multiset(read_ours(zv, store_path), kept)


# --------------------------------------------------------------------------
# Per-job directories merged by copying
# --------------------------------------------------------------------------

def _merge(src: Path, dst: Path, how: str):
    if how == "rsync":
        rsync = shutil.which("rsync")
        if rsync is None:
            pytest.skip("rsync is not installed (apt-get install rsync)")
        subprocess.run([rsync, "-a", f"{src}/", f"{dst}/"], check=True)
    else:
        shutil.copytree(src, dst, dirs_exist_ok=True)


@pytest.mark.parametrize("how", ["rsync", "copytree"])
def test_jobs_in_separate_directories_merge(zv, rng, make_store_path, how):
    points = x_points(rng)
    merged = make_store_path("merged")
    for i, (lo, hi) in enumerate(zip(X_EDGES_UNALIGNED[:-1], X_EDGES_UNALIGNED[1:])):
        job = make_store_path(f"scan_job{i}")
        write_slab(zv, job, points, 0, lo, hi)
        _merge(job, merged, how)
    result = zv.finalise(str(merged))
    assert result["vertex_count"] == len(points[0])

    direct = make_store_path("direct")
    zv.write_points(str(direct), points[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=points[1])
    assert_same_multiset(read_ours(zv, merged), points, "merged job directories")
    assert_same_multiset(read_ours(zv, merged), read_ours(zv, direct), "merged vs direct write")


# --------------------------------------------------------------------------
# Negative coordinates
# --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "chunk,bin_", [((250.0,) * 3, (125.0,) * 3), ((300.0,) * 3, None), ((300.0,) * 3, (150.0,) * 3)],
    ids=["chunk250", "chunk300", "chunk300-bin150"],
)
def test_negative_coordinate_partitions(zv, reference, rng, store_path, chunk, bin_):
    points = make_points(rng, 4000, (-600.0, -350.0, -1000.0), (400.0, 650.0, 500.0))
    edges = [-1000.0, -500.0, 0.0, 500.0]
    write_slabs(zv, store_path, points, axis=2, edges=edges, chunk_shape=chunk, bin_shape=bin_)
    result = zv.finalise(str(store_path))
    assert result["vertex_count"] == len(points[0])
    assert result["chunk_count"] == len(chunk_keys(points[0], chunk))
    assert_same_multiset(read_ours(zv, store_path), points, "negative-coordinate partitions")
    report = reference.validate(store_path)
    assert report["errors"] == [], report["errors"]
    assert_same_multiset(reference.read(store_path), points, "reference read of negative partitions")


# --------------------------------------------------------------------------
# Concurrent writer processes (the SLURM job-array pattern)
# --------------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys, numpy as np
    from zarr_vectors.types.points import write_points_partition
    data = np.load(sys.argv[2])
    attrs = {k[5:]: data[k] for k in data.files if k.startswith("attr_")}
    write_points_partition(sys.argv[1], data["positions"], chunk_shape=(250., 250., 250.),
                           bin_shape=(125., 125., 125.), attributes=attrs,
                           x_range=(float(sys.argv[3]), float(sys.argv[4])))
    """
)


def test_concurrent_partition_processes(zv, rng, tmp_path, store_path):
    points = x_points(rng, 6000)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    procs = []
    for i, (lo, hi) in enumerate(zip(X_EDGES_UNALIGNED[:-1], X_EDGES_UNALIGNED[1:])):
        part = slab(points, 0, lo, hi)
        npz = tmp_path / f"part{i}.npz"
        np.savez(npz, positions=part[0], **{f"attr_{k}": v for k, v in part[1].items()})
        procs.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(store_path), str(npz), repr(lo), repr(hi)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    failures = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            failures.append(err)
    assert not failures, "partition writer processes failed:\n" + "\n---\n".join(failures)
    result = zv.finalise(str(store_path))
    assert len(result["merged"]) == 4
    assert_same_multiset(read_ours(zv, store_path), points, "concurrently written partitions")


def test_two_runs_of_one_partition_at_once_are_never_published(zv, rng, tmp_path, store_path):
    # A duplicated task (the same array index twice, or a requeue while the first
    # still runs) writes the same partition as a running one. Run B starts and
    # finishes while run A is halfway (A's progress callback runs B to the end).
    # Their in-place cells are mixed, so neither may publish: A sees that
    # started.json is no longer its own and voids the partition, and finalise
    # refuses until one more run.
    first, second, third = (x_points(rng, 3000) for _ in range(3))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    npz = tmp_path / "second.npz"
    np.savez(npz, positions=second[0], **{f"attr_{k}": v for k, v in second[1].items()})
    ran = []

    def run_b_midway(done, total):
        if not ran and done >= total // 2:
            ran.append(subprocess.run([sys.executable, "-c", _WORKER, str(store_path), str(npz), "0.0", "1250.0"],
                                      env=env, capture_output=True, text=True, timeout=300))

    with pytest.raises(zv.errors.PartitionConflictError, match=all_of("x_0_1250", "two runs")):
        zv.write_points_partition(str(store_path), first[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=first[1],
                                  x_range=(0.0, 1250.0), progress=run_b_midway)
    assert ran and ran[0].returncode == 0, ran and ran[0].stderr
    with pytest.raises(zv.errors.PartitionConflictError, match=all_of("x_0_1250", "two runs")):
        zv.finalise(str(store_path))
    assert not (store_path / "zarr.json").exists()
    # One more run, with nothing else running, is published.
    zv.write_points_partition(str(store_path), third[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=third[1],
                              x_range=(0.0, 1250.0))
    zv.finalise(str(store_path))
    assert_same_multiset(read_ours(zv, store_path), third, "the run after the voided pair")


_KILLED_RERUN = textwrap.dedent(
    """
    import os, signal, sys, numpy as np
    from zarr_vectors.types.points import write_points_partition
    data = np.load(sys.argv[2])
    def progress(done, total):
        if done > total // 2:
            os.kill(os.getpid(), signal.SIGKILL)
    write_points_partition(sys.argv[1], data["positions"], chunk_shape=(250., 250., 250.),
                           bin_shape=(125., 125., 125.), attributes={"a": data["attr_a"]},
                           x_range=(0.0, 1250.0), progress=progress)
    """
)


def test_rerun_into_a_finalised_store_changes_nothing_until_finalised(zv, rng, tmp_path, store_path):
    # A re-run into a published store stages all of its chunks, so readers see the
    # published data until finalisation merges the new run; a re-run killed
    # halfway leaves the store exactly as it was (it used to leave a mix of the
    # two runs' cells, unreadable or silently wrong).
    from zarr_vectors.validate import validate

    def points(n):
        p = x_points(rng, n)
        return p[0], {"a": rng.integers(0, 9, n).astype(np.int32)}

    old, new = points(5000), points(7000)
    zv.write_points_partition(str(store_path), old[0], chunk_shape=CHUNK, bin_shape=BIN, attributes=old[1],
                              x_range=(0.0, 1250.0))
    zv.finalise(str(store_path))
    published = tree_digest(store_path)
    npz = tmp_path / "new.npz"
    np.savez(npz, positions=new[0], attr_a=new[1]["a"])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    killed = subprocess.run([sys.executable, "-c", _KILLED_RERUN, str(store_path), str(npz)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert_same_multiset(read_ours(zv, store_path), old, "the published store after a killed re-run")
    assert validate(str(store_path), level=4).ok
    # A complete re-run is not visible either until finalisation.
    summary = zv.write_points_partition(str(store_path), new[0], chunk_shape=CHUNK, bin_shape=BIN,
                                        attributes=new[1], x_range=(0.0, 1250.0))
    assert summary["chunks_in_place"] == 0 and summary["chunks_staged"] > 0, summary
    after_run = tree_digest(store_path)
    assert {k: v for k, v in after_run.items() if not k.startswith(".zvf/")} == published, \
        diff_trees(published, after_run)
    assert_same_multiset(read_ours(zv, store_path), old, "the published store before finalising the re-run")
    zv.finalise(str(store_path))
    assert_same_multiset(read_ours(zv, store_path), new, "the store after finalising the re-run")
    assert validate(str(store_path), level=4).ok
