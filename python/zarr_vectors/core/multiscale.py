"""Finalisation: store metadata and the NGFF multiscales block."""

from __future__ import annotations

from typing import Any

import zarr

from .. import _zvf
from .._convert import flag, threads_count
from .store import store_path


def finalise(
    path: Any, *, allow_gaps: bool = False, threads: int | None = None, durable: bool = False
) -> dict[str, Any]:
    """Finalise a store written by ``write_points_partition``.

    Checks that the partitions' manifests agree, refuses incomplete,
    overlapping or inconsistent partitions (naming them), reports gaps along
    the partition axis (refused unless ``allow_gaps``), merges the pieces of
    chunks that straddle partition edges, computes bounds and presence, and
    writes array, level and root metadata, the root last. Level-0 cells that
    no complete partition claims (left by a partition whose directory was
    deleted, e.g. after an overlap) are deleted. Idempotent: on a final store
    with nothing pending it writes nothing (``changed`` is False).
    ``durable=True`` returns only once the merged cells and the metadata are
    on stable storage (the cells flushed before the metadata that publishes
    them).

    Returns a dict with ``changed``, ``merged`` (partition ids), ``vertex_count``,
    ``chunk_count``, ``bounds``, ``gaps``, ``pyramid_dropped`` and
    ``orphans_removed`` (cell files deleted).
    """
    return _zvf.finalise(
        store_path(path), flag(allow_gaps, "allow_gaps"), threads_count(threads), flag(durable, "durable")
    )


def write_multiscale_metadata(root: Any) -> list[dict[str, Any]]:
    """Finalise the store behind ``root`` and return its NGFF ``datasets`` list.

    ``root`` is the group from ``open_store(path, mode="r+")`` (or a path).
    Pending partitions are merged first (see :func:`finalise`); the root
    ``multiscales`` block is written with the rest of the metadata. The group
    object is refreshed so its attributes show the finalised store.
    """
    path = store_path(root)
    finalise(path)
    fresh = zarr.open_group(store=root.store if isinstance(root, zarr.Group) else path, mode="r")
    if isinstance(root, zarr.Group):
        # Keep the caller's handle in step with what is now on disk. zarr's
        # group handle is a frozen dataclass that caches its metadata.
        try:
            object.__setattr__(root._async_group, "metadata", fresh._async_group.metadata)
        except AttributeError:  # a zarr release without this internal: handle stays stale
            pass
    return list(fresh.attrs["multiscales"][0]["datasets"])


__all__ = ["finalise", "write_multiscale_metadata"]
