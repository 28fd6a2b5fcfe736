"""Chunk-shape planning: choose ``chunk_shape``/``bin_shape`` before writing.

The planner (in the native engine, shared with ``zvf plan``) sizes chunks so
the largest cell file of a chunk (12 bytes per float32 xyz point) averages
inside a band, 1-4 MB by default, the band the HPC guide recommends for Lustre
and GPFS. With ``partitions=K`` it also cuts K slab ranges that start and end
on chunk boundaries, so no chunk is shared between tasks::

    from zarr_vectors.core.plan import plan_chunks

    plan = plan_chunks(1_000_000_000, ((0, 0, 0), (10_000, 10_000, 10_000)),
                       {"intensity": "float32"}, partitions=20, axis="z")
    write_points_partition(path, positions, attributes={"intensity": values},
                           **plan.write_kwargs(), **plan.partition_kwargs(task))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _zvf
from .._convert import compressor_name
from ..errors import InvalidInputError

_AXES = {"x": 0, "y": 1, "z": 2, "t": 3}


@dataclass(frozen=True)
class ChunkPlan:
    """A planned layout. Sizes are bytes; ``bytes_per_chunk`` is the mean size of
    the largest cell file over the chunks that hold points."""

    chunk_shape: tuple[float, ...]
    bin_shape: tuple[float, ...]
    bins_per_chunk: tuple[int, ...]
    grid_origin: tuple[int, ...]
    grid_shape: tuple[int, ...]
    chunk_count: int
    nonempty_chunks: float
    points_per_chunk: float
    full_chunk_points: float
    bytes_per_chunk: float
    full_chunk_bytes: float
    band: tuple[float, float]
    target_bytes: float
    in_band: bool
    compressor: str
    compression_ratio: float
    arrays: tuple[dict, ...]
    files: float
    max_dir_entries: int
    partition_axis: str
    partitions_aligned: bool
    partitions: tuple[tuple[float, float], ...]
    partition_layers: tuple[int, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    def write_kwargs(self) -> dict[str, Any]:
        """``chunk_shape``, ``bin_shape`` (and ``compressor``) for the writers."""
        out: dict[str, Any] = {"chunk_shape": self.chunk_shape, "bin_shape": self.bin_shape}
        if self.compressor != "none":
            out["compressor"] = self.compressor
        return out

    def partition_kwargs(self, task: int) -> dict[str, Any]:
        """The range argument of task ``task`` for ``write_points_partition``:
        ``{"z_range": (lo, hi)}`` (or ``bbox`` for the fourth axis)."""
        if not isinstance(task, numbers.Integral) or not 0 <= task < len(self.partitions):
            raise InvalidInputError(
                f"task {task!r} is not in 0..{len(self.partitions) - 1} (the plan has "
                f"{len(self.partitions)} partitions)"
            )
        lo, hi = self.partitions[task]
        axis = _AXES[self.partition_axis]
        if axis < 3:
            return {f"{self.partition_axis}_range": (lo, hi)}
        ndim = len(self.chunk_shape)
        box_lo = [-math.inf] * ndim
        box_hi = [math.inf] * ndim
        box_lo[axis], box_hi[axis] = lo, hi
        return {"bbox": (tuple(box_lo), tuple(box_hi))}


def _dtype_name(value: Any, what: str) -> str:
    try:
        return np.dtype(value).name
    except TypeError:
        raise InvalidInputError(f"{what} {value!r} is not a dtype (e.g. 'float32', np.uint16)") from None


def _attribute_specs(attributes: Any) -> list[tuple[str, str, int]]:
    if attributes is None:
        return []
    if not isinstance(attributes, Mapping):
        raise InvalidInputError(
            f"attributes must be a dict of name -> dtype or (dtype, components), got {type(attributes).__name__}"
        )
    out = []
    for name, spec in attributes.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"attribute name {name!r} is not a str")
        components = 1
        if isinstance(spec, tuple):
            if len(spec) != 2 or not isinstance(spec[1], numbers.Integral) or isinstance(spec[1], bool):
                raise InvalidInputError(
                    f"attribute {name!r}: expected a dtype or (dtype, components), got {spec!r}"
                )
            spec, components = spec[0], int(spec[1])
        out.append((name, _dtype_name(spec, f"attribute {name!r} dtype"), components))
    return out


def _size(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{what} must be a number of bytes, got {value!r}")
    return float(value)


def plan_chunks(
    count: int,
    bounds: Any,
    attributes: Mapping[str, Any] | None = None,
    *,
    positions_dtype: Any = "float32",
    occupancy: float = 1.0,
    band: tuple[float, float] = (1e6, 4e6),
    target: float | None = None,
    compressor: str | Sequence[Mapping[str, Any] | str] | None = None,
    compression_ratio: float = 1.0,
    partitions: int = 1,
    axis: str | int | None = None,
    bins_per_axis: int = 4,
) -> ChunkPlan:
    """Suggest ``chunk_shape``/``bin_shape`` for ``count`` points in ``bounds``.

    Parameters
    ----------
    count : int
        Points in the whole store (> 0).
    bounds : ((lo, ...), (hi, ...))
        Inclusive extent of the points, 2 to 4 axes; ``lo == hi`` is allowed
        (all points in a plane).
    attributes : dict of name -> dtype or (dtype, components), optional
        E.g. ``{"intensity": "float32", "rgb": ("uint8", 3)}``.
    positions_dtype : "float32" (12 bytes per xyz point) or "float64"
    occupancy : float in (0, 1]
        Density hint: the fraction of the box that holds points (1: uniform).
    band : (min, max) bytes
        Band for the largest cell file of a chunk (MB = 10**6 bytes).
    target : bytes, optional
        Preferred size inside the band (default: the band's geometric mean).
    compressor : None, "none", "zstd", "blosc", "gzip", or a list of codecs
        A list is as zarr-vectors takes it: the codecs after the serializer,
        e.g. ``[{"name": "zstd", "configuration": {"level": 3}}, {"name": "crc32c"}]``
        (one of zstd, blosc or gzip, then optionally a crc32c checksum).
        The compressed size is unknown: sizes are raw sizes divided by
        ``compression_ratio`` (1 by default, an upper bound).
    partitions, axis : int, "x"/"y"/"z"/"t" or 0..3
        K tasks writing slabs along ``axis`` (default z, or y in 2-D): the plan
        lists K ranges on chunk boundaries when there are at least K layers.
    bins_per_axis : int
        ``bin_shape = chunk_shape / bins_per_axis`` (4: 64 bins in 3-D).

    Returns
    -------
    ChunkPlan; ``plan.write_kwargs()`` and ``plan.partition_kwargs(i)`` go
    straight into ``write_points_partition``.
    """
    if isinstance(count, bool) or not isinstance(count, numbers.Integral):
        raise InvalidInputError(f"count must be an int (number of points), got {count!r}")
    if count <= 0:
        raise InvalidInputError(f"point count must be > 0, got {count}")
    try:
        lo, hi = bounds
        lo = [float(v) for v in lo]
        hi = [float(v) for v in hi]
    except (TypeError, ValueError):
        raise InvalidInputError(f"bounds must be ((lo, ...), (hi, ...)), got {bounds!r}") from None
    try:
        band_lo, band_hi = band
    except (TypeError, ValueError):
        raise InvalidInputError(f"band must be a (min, max) pair of byte counts, got {band!r}") from None
    if axis is None:
        axis_index = None
    elif isinstance(axis, str) and axis in _AXES:
        axis_index = _AXES[axis]
    elif isinstance(axis, numbers.Integral) and not isinstance(axis, bool) and 0 <= axis <= 3:
        axis_index = int(axis)
    else:
        raise InvalidInputError(f"axis must be 'x', 'y', 'z', 't' or 0..3, got {axis!r}")
    for name, value in (("partitions", partitions), ("bins_per_axis", bins_per_axis)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidInputError(f"{name} must be an int, got {value!r}")
    raw = _zvf.plan_chunks(
        int(count), lo, hi, _attribute_specs(attributes),
        _dtype_name(positions_dtype, "positions_dtype"),
        _size(occupancy, "occupancy"), _size(band_lo, "band min"), _size(band_hi, "band max"),
        None if target is None else _size(target, "target"),
        compressor_name(compressor), _size(compression_ratio, "compression_ratio"),
        int(partitions), axis_index, int(bins_per_axis),
    )
    parts = raw.pop("partitions")
    raw["partitions"] = tuple((p["lo"], p["hi"]) for p in parts)
    raw["partition_layers"] = tuple(p["layers"] for p in parts)
    raw["arrays"] = tuple(raw["arrays"])
    raw["warnings"] = tuple(raw["warnings"])
    raw["notes"] = tuple(raw["notes"])
    return ChunkPlan(**raw)


__all__ = ["ChunkPlan", "plan_chunks"]
