"""Shared helpers for the zvf test-suite: multiset comparison, data, trees."""

from __future__ import annotations

import collections
import hashlib
import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np

PointSet = tuple[np.ndarray, Mapping[str, np.ndarray]]


# --------------------------------------------------------------------------
# Multiset comparison
# --------------------------------------------------------------------------

def _columns(positions: np.ndarray, attributes: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Sort keys, most significant first: position axes, then attribute columns
    in attribute-name order."""
    n = positions.shape[0]
    cols = [positions[:, i] for i in range(positions.shape[1])]
    for name in sorted(attributes):
        values = np.asarray(attributes[name]).reshape(n, -1)
        cols.extend(values[:, j] for j in range(values.shape[1]))
    return cols


def canonical_order(positions: np.ndarray, attributes: Mapping[str, np.ndarray]) -> np.ndarray:
    """Row permutation that sorts rows lexicographically on
    (positions..., attributes...)."""
    cols = _columns(positions, attributes)
    if positions.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    return np.lexsort(cols[::-1])


def _row_keys(positions: np.ndarray, attributes: Mapping[str, np.ndarray]) -> list[bytes]:
    n = positions.shape[0]
    parts = [np.ascontiguousarray(positions).reshape(n, -1).view(np.uint8).reshape(n, -1)]
    for name in sorted(attributes):
        a = np.ascontiguousarray(attributes[name]).reshape(n, -1)
        parts.append(a.view(np.uint8).reshape(n, -1))
    rows = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), np.uint8)
    return [r.tobytes() for r in rows]


def _describe(positions: np.ndarray, attributes: Mapping[str, np.ndarray]) -> str:
    attrs = ", ".join(
        f"{k}: {np.asarray(v).dtype}{tuple(np.asarray(v).shape)}" for k, v in sorted(attributes.items())
    )
    return f"{positions.shape[0]} rows, positions {positions.dtype}{tuple(positions.shape)}, attributes {{{attrs}}}"


def _first_rows(positions, attributes, idx, limit=5) -> str:
    lines = []
    for i in idx[:limit]:
        row = [f"pos={positions[i].tolist()}"]
        for name in sorted(attributes):
            row.append(f"{name}={np.asarray(attributes[name])[i].tolist()}")
        lines.append("      " + " ".join(row))
    return "\n".join(lines)


def multiset_difference(actual: PointSet, expected: PointSet) -> str | None:
    """None when ``actual`` and ``expected`` hold the same multiset of rows
    (positions + every attribute, exact values, same dtypes and row shapes);
    otherwise a human-readable account of the difference."""
    a_pos, a_attrs = np.asarray(actual[0]), dict(actual[1])
    e_pos, e_attrs = np.asarray(expected[0]), dict(expected[1])
    problems: list[str] = []

    if a_pos.ndim != 2 or e_pos.ndim != 2:
        return f"positions must be 2-D: actual {a_pos.shape}, expected {e_pos.shape}"
    if sorted(a_attrs) != sorted(e_attrs):
        problems.append(f"attribute names differ: actual {sorted(a_attrs)} vs expected {sorted(e_attrs)}")
    if a_pos.shape[1] != e_pos.shape[1]:
        problems.append(f"dimensionality differs: actual D={a_pos.shape[1]} vs expected D={e_pos.shape[1]}")
    if a_pos.dtype != e_pos.dtype:
        problems.append(f"position dtype differs: actual {a_pos.dtype} vs expected {e_pos.dtype}")
    for name in sorted(set(a_attrs) & set(e_attrs)):
        av, ev = np.asarray(a_attrs[name]), np.asarray(e_attrs[name])
        if av.dtype != ev.dtype:
            problems.append(f"attribute {name!r} dtype differs: actual {av.dtype} vs expected {ev.dtype}")
        if av.shape[1:] != ev.shape[1:]:
            problems.append(
                f"attribute {name!r} row shape differs: actual {av.shape[1:]} vs expected {ev.shape[1:]}"
            )
        if av.shape[0] != a_pos.shape[0]:
            problems.append(f"actual attribute {name!r} has {av.shape[0]} rows but positions {a_pos.shape[0]}")
        if ev.shape[0] != e_pos.shape[0]:
            problems.append(f"expected attribute {name!r} has {ev.shape[0]} rows but positions {e_pos.shape[0]}")
    if a_pos.shape[0] != e_pos.shape[0]:
        problems.append(f"row counts differ: actual {a_pos.shape[0]} vs expected {e_pos.shape[0]}")

    if not problems:
        ao = canonical_order(a_pos, a_attrs)
        eo = canonical_order(e_pos, e_attrs)
        equal = np.array_equal(a_pos[ao], e_pos[eo]) and all(
            np.array_equal(np.asarray(a_attrs[k])[ao], np.asarray(e_attrs[k])[eo]) for k in a_attrs
        )
        if equal:
            return None
        problems.append("same row count but different rows")

    # Detailed accounting, only on failure.
    header = (
        "point multisets differ:\n"
        f"  actual:   {_describe(a_pos, a_attrs)}\n"
        f"  expected: {_describe(e_pos, e_attrs)}\n  " + "\n  ".join(problems)
    )
    comparable = (
        sorted(a_attrs) == sorted(e_attrs)
        and a_pos.shape[1] == e_pos.shape[1]
        and a_pos.dtype == e_pos.dtype
        and all(np.asarray(a_attrs[k]).dtype == np.asarray(e_attrs[k]).dtype for k in a_attrs)
        and all(np.asarray(a_attrs[k]).shape[1:] == np.asarray(e_attrs[k]).shape[1:] for k in a_attrs)
        and all(np.asarray(a_attrs[k]).shape[0] == a_pos.shape[0] for k in a_attrs)
        and all(np.asarray(e_attrs[k]).shape[0] == e_pos.shape[0] for k in e_attrs)
    )
    if comparable:
        a_keys, e_keys = _row_keys(a_pos, a_attrs), _row_keys(e_pos, e_attrs)
        a_count, e_count = collections.Counter(a_keys), collections.Counter(e_keys)
        only_a = a_count - e_count
        only_e = e_count - a_count
        dup_a = sum(c - 1 for c in a_count.values() if c > 1)
        dup_e = sum(c - 1 for c in e_count.values() if c > 1)
        header += (
            f"\n  rows only in actual: {sum(only_a.values())}; rows only in expected: {sum(only_e.values())}"
            f"\n  duplicated rows: actual {dup_a}, expected {dup_e}"
        )
        if only_a:
            idx = [i for i, k in enumerate(a_keys) if k in only_a]
            header += "\n  first rows only in actual:\n" + _first_rows(a_pos, a_attrs, idx)
        if only_e:
            idx = [i for i, k in enumerate(e_keys) if k in only_e]
            header += "\n  first rows only in expected:\n" + _first_rows(e_pos, e_attrs, idx)
    return header


def assert_same_multiset(actual: PointSet, expected: PointSet, what: str = "") -> None:
    """Assert that two (positions, {attributes}) point sets are equal as
    multisets: rows sorted lexicographically on (positions, attributes...)
    and compared exactly with np.array_equal."""
    diff = multiset_difference(actual, expected)
    if diff is not None:
        raise AssertionError((f"{what}: " if what else "") + diff)


def select(points: PointSet, mask: np.ndarray) -> PointSet:
    positions, attributes = points
    return positions[mask], {k: np.asarray(v)[mask] for k, v in attributes.items()}


def concat(parts: list[PointSet]) -> PointSet:
    positions = np.concatenate([p for p, _ in parts], axis=0)
    names = sorted(parts[0][1])
    return positions, {n: np.concatenate([a[n] for _, a in parts], axis=0) for n in names}


def bbox_mask(positions: np.ndarray, lo, hi) -> np.ndarray:
    """Inclusive on both ends, on every axis."""
    lo = np.asarray(lo, dtype=positions.dtype)
    hi = np.asarray(hi, dtype=positions.dtype)
    return np.all((positions >= lo) & (positions <= hi), axis=1)


# --------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------

def uniform_points(rng: np.random.Generator, n: int, lo, hi, dtype=np.float32) -> np.ndarray:
    """``n`` points uniform in the half-open box [lo, hi), guaranteed to be
    strictly below ``hi`` after rounding to ``dtype``."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    pts = rng.uniform(lo, hi, size=(n, lo.size)).astype(dtype)
    hi_d = hi.astype(dtype)
    below = np.nextafter(hi_d, np.asarray(-np.inf, dtype=dtype))
    pts = np.where(pts >= hi_d, below, pts)
    lo_d = lo.astype(dtype)
    return np.where(pts < lo_d, lo_d, pts).astype(dtype)


def make_attributes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The standard attribute pair: float32 (N,) and uint8 (N, 3)."""
    return {
        "intensity": rng.standard_normal(n).astype(np.float32),
        "rgb": rng.integers(0, 256, size=(n, 3), dtype=np.uint8),
    }


def make_points(rng, n, lo, hi, dtype=np.float32) -> PointSet:
    positions = uniform_points(rng, n, lo, hi, dtype)
    return positions, make_attributes(rng, n)


def slab_mask(positions: np.ndarray, axis: int, lo: float, hi: float) -> np.ndarray:
    """Half-open [lo, hi) on one axis, compared in the positions' dtype."""
    col = positions[:, axis]
    return (col >= col.dtype.type(lo)) & (col < col.dtype.type(hi))


def chunk_keys(positions: np.ndarray, chunk_shape) -> set[tuple[int, ...]]:
    coords = np.floor(positions.astype(np.float64) / np.asarray(chunk_shape, dtype=np.float64)).astype(np.int64)
    return {tuple(int(v) for v in row) for row in coords}


# --------------------------------------------------------------------------
# Store trees
# --------------------------------------------------------------------------

def list_files(root: Path) -> list[str]:
    """Every file under ``root`` as a sorted list of relative POSIX paths
    (empty when ``root`` does not exist)."""
    root = Path(root)
    if not root.exists():
        return []
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(Path(dirpath, f).relative_to(root).as_posix())
    return sorted(out)


def tree_digest(root: Path) -> dict[str, str]:
    """{relative path: sha256 of its bytes} for every file under ``root``."""
    root = Path(root)
    return {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in list_files(root)}


def diff_trees(before: dict[str, str], after: dict[str, str]) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = []
    for label, items in (("added", added), ("removed", removed), ("changed", changed)):
        if items:
            shown = ", ".join(items[:10]) + (" ..." if len(items) > 10 else "")
            parts.append(f"{len(items)} {label}: {shown}")
    return "; ".join(parts) or "identical"


# --------------------------------------------------------------------------
# Regex helpers for pytest.raises(match=...)
# --------------------------------------------------------------------------

def all_of(*patterns: str) -> str:
    """A regex that matches (via re.search) only when every pattern occurs
    somewhere in the text, in any order."""
    return "(?s)^" + "".join(f"(?=.*?(?:{p}))" for p in patterns)


def literal(text: str) -> str:
    return re.escape(text)


def run_cli(exe, *args):
    """Runs the zvf CLI and captures its output (text)."""
    import subprocess

    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)
