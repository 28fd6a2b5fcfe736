"""zarr_vectors: write and read Zarr Vectors (ZV 0.9) point clouds from HPC clusters.

The engine is native (libzvf, C++); this package is its Python face. The
module layout follows the HPC guide::

    from zarr_vectors.types.points import write_points_partition
    from zarr_vectors.core.store import open_store
    from zarr_vectors.core.multiscale import write_multiscale_metadata

MPI ranks holding arbitrary (not slab-partitioned) points: zarr_vectors.mpi.write_points_collective.
"""

from __future__ import annotations

try:
    from . import _zvf
except ImportError as err:  # pragma: no cover - only without a build
    err.add_note("zarr_vectors' native module is missing: install the package with `pip install .`")
    raise

from . import errors
from .core.multiscale import finalise, write_multiscale_metadata
from .core.plan import ChunkPlan, plan_chunks
from .core.store import open_store
from .multiresolution.coarsen import build_pyramid, select_level
from .types.points import read_points, write_points, write_points_partition
from .validate import validate as validate_store

__version__ = "0.1.0"
ZV_VERSION = _zvf.ZV_VERSION


def store_info(path) -> dict:
    """Levels, counts, bounds, chunk grid, attributes and codec of a finalised store."""
    from ._convert import store_url

    return _zvf.store_info(store_url(path))


def list_partitions(path) -> list[dict]:
    """Partitions pending finalisation in a store: id, complete, range, vertex_count."""
    from ._convert import store_url

    return _zvf.list_partitions(store_url(path))


__all__ = [
    "ChunkPlan",
    "build_pyramid",
    "errors",
    "finalise",
    "list_partitions",
    "open_store",
    "plan_chunks",
    "read_points",
    "select_level",
    "store_info",
    "validate_store",
    "write_multiscale_metadata",
    "write_points",
    "write_points_partition",
]
