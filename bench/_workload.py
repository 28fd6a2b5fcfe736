"""The benchmark workloads, shared by our side and the reference side.

Both sides build the same arrays from the same seed, so each runs in its own
interpreter (the reference lives in a separate virtual environment) without
shipping data between them.
"""

import numpy as np

DOMAIN = 1000.0
CHUNK = (200.0, 200.0, 200.0)
BIN = (50.0, 50.0, 50.0)


def points(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    positions = (rng.random((n, 3), dtype=np.float64) * DOMAIN).astype(np.float32)
    intensity = rng.random(n, dtype=np.float32)
    return positions, intensity
