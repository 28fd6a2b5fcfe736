"""Opening stores as zarr-python groups."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import zarr
import zarr.storage

from .._convert import store_url
from ..errors import InvalidInputError, StoreNotFoundError

_PENDING_ROOT = {"zarr_format": 3, "node_type": "group", "attributes": {"zvf_pending": True}}


def _has_partitions(path: str) -> bool:
    return os.path.isdir(os.path.join(path, ".zvf", "partitions"))


def open_store(path: Any, mode: str = "r") -> zarr.Group:
    """Open a ZV store as a real :class:`zarr.Group`.

    ``mode="r"`` opens a finalised store read-only. ``mode="r+"`` opens it for
    update; on a store that so far holds only partitions (written by
    ``write_points_partition``) it also creates the root group node, so that
    the finalisation step can be called on the returned group::

        root = open_store(path, mode="r+")
        write_multiscale_metadata(root)      # finalises the partitions
        zarr.consolidate_metadata(root.store)
    """
    if isinstance(path, zarr.Group):
        return path
    if mode not in ("r", "r+"):
        raise InvalidInputError(f"mode must be 'r' or 'r+', got {mode!r}")
    url = store_url(path)
    if not os.path.isdir(url):
        raise StoreNotFoundError(f"no store at {url}")
    root_key = os.path.join(url, "zarr.json")
    if not os.path.exists(root_key):
        if mode == "r" or not _has_partitions(url):
            pending = " (it holds partitions: finalise it first)" if _has_partitions(url) else ""
            raise StoreNotFoundError(f"{url} is not a ZV store: it has no zarr.json{pending}")
        # Atomic create: the finaliser replaces this node with the real root.
        fd, tmp = tempfile.mkstemp(dir=url, prefix=".zarr.json.", suffix=".zvftmp")
        with os.fdopen(fd, "w") as f:
            json.dump(_PENDING_ROOT, f)
        os.replace(tmp, root_key)
    store = zarr.storage.LocalStore(url, read_only=(mode == "r"))
    return zarr.open_group(store=store, mode=mode)


def store_path(root: Any) -> str:
    """The filesystem path behind a zarr.Group opened on a LocalStore, or a path."""
    if isinstance(root, zarr.Group):
        store = root.store
        if isinstance(store, zarr.storage.LocalStore) and root.path in ("", "/"):
            return str(store.root)
        raise InvalidInputError(
            f"expected the root group of a local ZV store, got group {root.path!r} on {store!r}"
        )
    return store_url(root)


__all__ = ["open_store"]
