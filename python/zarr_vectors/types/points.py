"""Point clouds: one-shot writes, partitioned writes and reads.

All work runs in the native engine with the GIL released, using every core
unless ``threads`` says otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _zvf
from .._convert import (
    attribute_arrays,
    box,
    compressor_name,
    flag,
    pair,
    positions_array,
    progress_callback,
    shape_tuple,
    store_url,
    threads_count,
)
from ..errors import CorruptStoreError, InvalidInputError

Progress = Callable[[int, int], None]


def write_points(
    path: Any,
    positions: Any,
    *,
    chunk_shape: Any,
    bin_shape: Any = None,
    attributes: Mapping[str, Any] | None = None,
    bounds: Any = None,
    compressor: str | Sequence[Mapping[str, Any] | str] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    durable: bool = False,
) -> dict[str, Any]:
    """Write a point cloud to a new ZV store in one go.

    Parameters
    ----------
    path : str or os.PathLike
        Directory of the new store (``*.zarrvectors`` by convention). Must not
        hold a store already.
    positions : array (N, D), float32 or float64, D in 2..4
        Finite coordinates, anywhere in space (negative ones included).
    chunk_shape : sequence of D floats
        Physical extent of one chunk: the unit of files and parallel writes.
    bin_shape : sequence of D floats, optional
        Finer grid inside a chunk (the fragment index); must divide
        ``chunk_shape``. Default: one bin per chunk.
    attributes : dict of name -> array (N,) or (N, C), optional
        Per-point values: float16/32/64, int8..64, uint8..64 or bool. Names
        are key components: letters, digits, ``_``, and after the first
        character ``.`` or ``-``.
    bounds : ((lo, ...), (hi, ...)), optional
        Inclusive declared extent; default the data's min/max. Points outside
        raise :class:`~zarr_vectors.errors.InvalidInputError`.
    compressor : None, "none", "zstd", "blosc", "gzip", or a list of codecs
        A list is as zarr-vectors takes it: the codecs after the serializer,
        e.g. ``[{"name": "zstd", "configuration": {"level": 3}}, {"name": "crc32c"}]``
        (one of zstd, blosc or gzip, then optionally a crc32c checksum).
        The codecs of every chunk array; none by default, as the reference.
    threads : int, optional
        Worker threads (default: all cores).
    progress : callable(done, total), optional
        Called from the calling thread as chunks are written.
    durable : bool
        Return only once the store is on stable storage: the cells are
        flushed (``syncfs`` on a filesystem) before the metadata that
        publishes them, and the metadata after. Off by default: the OS then
        flushes the data in its own time (ext4: within about 30 s), and a node
        that crashes first loses it. S3 writes are durable either way.

    Returns
    -------
    dict with ``vertex_count``, ``chunk_count`` and ``bins_per_chunk``.
    """
    pos = positions_array(positions)
    ndim = pos.shape[1]
    attrs = attribute_arrays(attributes, pos.shape[0])
    chunk = shape_tuple(chunk_shape, "chunk_shape")
    if chunk is None:
        raise InvalidInputError("chunk_shape is required")
    bounds_pair = None if bounds is None else box(bounds, "bounds", ndim)
    return _zvf.write_points(
        store_url(path), pos, attrs, chunk, shape_tuple(bin_shape, "bin_shape"), bounds_pair,
        compressor_name(compressor), threads_count(threads), progress_callback(progress),
        flag(durable, "durable"),
    )


def write_points_partition(
    path: Any,
    positions: Any,
    *,
    chunk_shape: Any,
    bin_shape: Any = None,
    attributes: Mapping[str, Any] | None = None,
    x_range: Any = None,
    y_range: Any = None,
    z_range: Any = None,
    bbox: Any = None,
    compressor: str | Sequence[Mapping[str, Any] | str] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    durable: bool = False,
) -> dict[str, Any]:
    """Write one spatial partition of a store shared by independent writers.

    Each Slurm task or MPI rank calls this for its own slab; no locks and no
    coordinator are needed. The partition owns the half-open range it declares
    (``x_range``/``y_range``/``z_range`` = ``(lo, hi)``, or ``bbox`` =
    ``((lo, ...), (hi, ...))``; axes not named are unbounded) and every
    position must lie inside it. Chunks wholly inside the range are written in
    place; chunks straddling its edges are staged and merged by finalisation
    (:func:`zarr_vectors.finalise`, or ``write_multiscale_metadata``).

    Re-running a partition (a retried task) replaces its earlier output. The
    store becomes readable once finalised.

    The manifest that marks the partition complete is always fsynced.
    ``durable=True`` also flushes its cells to stable storage first, so that a
    node crash after the task ended cannot leave a "complete" partition whose
    data never reached the disk (see :func:`write_points`).

    Returns a dict with ``partition_id``, ``vertex_count``,
    ``chunks_in_place`` and ``chunks_staged``.
    """
    pos = positions_array(positions)
    ndim = pos.shape[1]
    attrs = attribute_arrays(attributes, pos.shape[0])
    chunk = shape_tuple(chunk_shape, "chunk_shape")
    if chunk is None:
        raise InvalidInputError("chunk_shape is required")
    lo = [-math.inf] * ndim
    hi = [math.inf] * ndim
    given = False
    if bbox is not None:
        lo, hi = box(bbox, "bbox", ndim)
        given = True
    for axis, (name, value) in enumerate((("x_range", x_range), ("y_range", y_range), ("z_range", z_range))):
        if value is None:
            continue
        if axis >= ndim:
            raise InvalidInputError(f"{name} given for {ndim}-D positions (axes are x, y[, z])")
        a, b = pair(value, name)
        if bbox is not None:
            raise InvalidInputError(f"give either bbox or {name}, not both")
        lo[axis], hi[axis] = a, b
        given = True
    if not given:
        raise InvalidInputError(
            "a partition must declare the range it owns: x_range=, y_range=, z_range= or bbox="
        )
    return _zvf.write_points_partition(
        store_url(path), pos, attrs, chunk, shape_tuple(bin_shape, "bin_shape"), lo, hi,
        compressor_name(compressor), threads_count(threads), progress_callback(progress),
        flag(durable, "durable"),
    )


def read_points(
    path: Any,
    *,
    level: int = 0,
    bbox: Any = None,
    attributes: list[str] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Read the points of one level, optionally only those inside ``bbox``.

    ``bbox`` is ``((lo, ...), (hi, ...))``, inclusive on both ends; chunks and
    bins outside it are never read. ``attributes=None`` reads every attribute
    (the reference reads none by default); pass a list to choose.

    Returns a dict with ``positions`` (N, D), ``attributes`` ({name: array})
    and ``vertex_count``. Dictionary-encoded attributes (the reference's string
    attributes) come back decoded, as arrays of their categories. An attribute
    of a dtype zvf does not know (none that the reference writes) is left out of
    an all-attributes read with a warning; naming one is an error.
    """
    if not isinstance(level, (int, np.integer)) or isinstance(level, bool) or level < 0:
        raise InvalidInputError(f"level must be a non-negative int, got {level!r}")
    bbox_pair = None
    if bbox is not None:
        try:
            ndim = len(bbox[0])
        except TypeError:
            raise InvalidInputError(f"bbox must be ((lo, ...), (hi, ...)), got {bbox!r}") from None
        bbox_pair = box(bbox, "bbox", ndim)
    if attributes is not None:
        if isinstance(attributes, str) or not all(isinstance(a, str) for a in attributes):
            raise InvalidInputError(f"attributes must be a list of names, got {attributes!r}")
        attributes = list(attributes)
    positions, attrs, categories, skipped = _zvf.read_points(
        store_url(path), int(level), bbox_pair, attributes, threads_count(threads)
    )
    for name, cats in categories.items():
        codes = attrs[name]
        if codes.size and int(codes.max()) >= len(cats):
            raise CorruptStoreError(
                f"attribute {name!r} holds code {int(codes.max())}, beyond its {len(cats)} categories")
        attrs[name] = np.asarray(cats)[codes]
    if skipped:
        warnings.warn("read_points left out attribute(s) zvf cannot read: "
                      + ", ".join(f"{name!r} ({why})" for name, why in skipped), stacklevel=2)
    return {"positions": positions, "attributes": attrs, "vertex_count": len(positions)}


__all__ = ["write_points", "write_points_partition", "read_points"]
