"""A synthetic, deterministic point cloud: the stand-in for your own data.

The HPC examples call the guide's loaders (``load_slab_positions``,
``load_positions_x_range``, ...). A real job reads its slab from the
instrument's files; these examples generate it instead, so that they run
anywhere and the tests can check a store against the exact points written.

The cloud fills the box ``[0, extent)`` on every axis. Along ``axis`` it is
cut into ``TILES`` equal tiles; tile ``t`` holds a fixed share of the points,
drawn from a generator seeded with ``(seed, axis, t)``. Loading a range
generates only the tiles it touches, and any set of half-open ranges that
covers ``[0, extent)`` without overlap returns every point exactly once, for
any number of slabs.
"""

from __future__ import annotations

import numpy as np

DEFAULT_POINTS = 20_000
DEFAULT_EXTENT = 10_000.0
TILES = 64


def _inside32(lo: float, hi: float) -> tuple[np.float32, np.float32]:
    """The smallest and largest float32 values in the half-open [lo, hi)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if float(lo32) < lo:
        lo32 = np.nextafter(lo32, np.float32(np.inf))
    while float(hi32) >= hi:
        hi32 = np.nextafter(hi32, np.float32(-np.inf))
    return lo32, hi32


def _tile(t, axis, total_points, seed, extent):
    n = total_points // TILES + (1 if t < total_points % TILES else 0)
    rng = np.random.default_rng([seed, axis, t])
    lo = np.zeros(3)
    hi = np.full(3, extent)
    lo[axis], hi[axis] = extent * t / TILES, extent * (t + 1) / TILES
    positions = rng.uniform(lo, hi, size=(n, 3)).astype(np.float32)
    for a in range(3):  # rounding to float32 must not leave the tile
        positions[:, a] = np.clip(positions[:, a], *_inside32(lo[a], hi[a]))
    intensity = rng.gamma(2.0, 100.0, size=n).astype(np.float32)
    return positions, intensity


def load_range(axis, lo, hi, *, total_points=DEFAULT_POINTS, seed=0, extent=DEFAULT_EXTENT):
    """Positions (N, 3) float32 and intensity (N,) float32 of the points whose
    coordinate on ``axis`` lies in the half-open ``[lo, hi)`` (compared in
    double precision, as ``write_points_partition`` checks ranges)."""
    first = max(int(np.floor(max(lo, 0.0) * TILES / extent)) - 1, 0)
    last = min(int(np.ceil(min(hi, extent) * TILES / extent)) + 1, TILES)
    parts = [_tile(t, axis, total_points, seed, extent) for t in range(first, last)]
    positions = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, 3), np.float32)
    intensity = np.concatenate([i for _, i in parts]) if parts else np.zeros(0, np.float32)
    coord = positions[:, axis].astype(np.float64)
    keep = (coord >= lo) & (coord < hi)
    return positions[keep], intensity[keep]


def load_all(axis, *, total_points=DEFAULT_POINTS, seed=0, extent=DEFAULT_EXTENT):
    """Every point of the cloud (what all slabs together hold)."""
    return load_range(axis, -np.inf, np.inf, total_points=total_points, seed=seed, extent=extent)
