"""Multi-resolution pyramids: coarse levels of a finalised point cloud.

Level k replaces every non-empty bin of size ``bin_{k-1} * coarsen_k`` by one
metavertex at the mean position of the level-0 points in it, and records how many
points it stands for in a ``count`` attribute. Attributes are carried down too
(which the reference package does not do): floating-point attributes by their
mean, integer attributes by their mode (the most frequent value, smallest on a
tie) unless ``reductions`` chooses ``"mean"`` (rounded), ``"min"``, ``"max"`` or
``"first"``. Every level is computed from level 0, so these are exact.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import _zvf
from .._convert import box, flag, progress_callback, store_url, threads_count
from ..errors import InvalidInputError

# The engine counts parts in a C int.
_MAX_PARTS = 2**31 - 1
# A coarse chunk is the root chunk times this; beyond it no store could use one.
_MAX_CHUNK_SCALE = 2**40


def _factor_pairs(factors: Any) -> list[tuple[float, float]]:
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or not factors:
        raise InvalidInputError(f"factors must be a non-empty list of (coarsen, sparsity) pairs, got {factors!r}")
    out = []
    for i, f in enumerate(factors):
        if isinstance(f, (int, float)):
            out.append((float(f), 1.0))
            continue
        try:
            c, s = f
            out.append((float(c), float(s)))
        except (TypeError, ValueError):
            raise InvalidInputError(f"factors[{i}] must be a (coarsen, sparsity) pair, got {f!r}") from None
    return out


def _chunk_scales(value: Any, n: int) -> list[list[int]] | None:
    if value is None:
        return None
    out = []
    for i, v in enumerate(value):
        try:
            items = [v] if isinstance(v, numbers.Integral) else list(v)
        except TypeError:
            items = [v]
        if not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and 1 <= x <= _MAX_CHUNK_SCALE
                   for x in items):
            raise InvalidInputError(f"chunk_scale_factors[{i}] must be a whole number from 1 to 2**40 or a tuple "
                                    f"of them, got {v!r}")
        out.append([int(x) for x in items])
    return out


def build_pyramid(
    path: Any,
    factors: Any,
    *,
    chunk_scale_factors: Any = None,
    reductions: Mapping[str, str] | None = None,
    overwrite: bool = False,
    part: tuple[int, int] | None = None,
    finalise_parts: bool = False,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    durable: bool = False,
) -> dict[str, Any]:
    """Build coarse levels 1..len(factors) of a finalised store.

    Parameters
    ----------
    factors : list of (coarsen, sparsity)
        One pair per level, relative to the level before it (compounding:
        ``[(2.0, 1.0), (2.0, 1.0)]`` gives bins 2x and 4x the base bin).
        Sparsity must be 1.0: it drops objects, and point clouds written
        without object ids have none.
    chunk_scale_factors : list, optional
        Per level, the level's chunk as a multiple of the root chunk (an int or
        one int per axis). By default a level whose bin outgrows the chunk gets
        the smallest larger chunk that its bin divides.
    reductions : dict name -> "mean" | "min" | "max" | "first" | "mode", optional
        How each attribute is carried into a metavertex. Default: ``mean`` for
        floats (float16 included), ``mode`` for integers and bool (smallest
        value on ties); an integer or bool ``mean`` rounds half to even. String
        (dictionary-encoded) attributes take ``mode`` or ``first``.
    overwrite : bool
        Replace a pyramid built with other settings (otherwise an error).
    part : (index, count), optional
        Scale-out: build only share ``index`` of ``count`` of every level's
        coarse chunks (e.g. one Slurm array task or MPI rank each); then call
        once with ``finalise_parts=True`` to publish the levels.
    durable : bool
        Return only once the levels are on stable storage: their cells are
        flushed (``syncfs``) before the part's record or the root metadata
        that publishes them, and the metadata after (see ``write_points``).

    Re-running with the same settings writes nothing (``changed`` is False).
    A build that fails or is killed leaves the existing levels readable and
    no half-written level visible; running it again completes it. If the
    store's metadata was consolidated, the consolidated copy is refreshed.

    Returns a dict with ``changed``, ``complete`` and ``levels`` (level,
    vertex_count, chunk_shape, bin_shape, chunk_count).
    """
    pairs = _factor_pairs(factors)
    scales = _chunk_scales(chunk_scale_factors, len(pairs))
    red = dict(reductions or {})
    for name, r in red.items():
        if not isinstance(name, str) or not isinstance(r, str):
            raise InvalidInputError(f"reductions must map attribute names to reduction names, got {reductions!r}")
    index, count = -1, 0
    if part is not None:
        try:
            index, count = part
        except (TypeError, ValueError):
            raise InvalidInputError(f"part must be (index, count), got {part!r}") from None
        # Whole numbers only: int(1.5) would quietly build part 1.
        if not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in (index, count)):
            raise InvalidInputError(f"part {part!r} must be two whole numbers (index, count)")
        index, count = int(index), int(count)
        if not 1 <= count <= _MAX_PARTS or not 0 <= index < count:
            raise InvalidInputError(f"part {part!r} must be (index, count) with 1 <= count <= {_MAX_PARTS} "
                                    "and 0 <= index < count")
        if finalise_parts:
            raise InvalidInputError("finalise_parts publishes the parts built before; pass no part with it "
                                    f"(got part={part!r})")
    return _zvf.build_pyramid(
        store_url(path), pairs, scales, red, bool(overwrite), index, count, bool(finalise_parts),
        threads_count(threads), progress_callback(progress), flag(durable, "durable"),
    )


def select_level(path: Any, bbox: Any, min_points: int, *, threads: int | None = None) -> int:
    """The coarsest level with at least ``min_points`` points inside ``bbox``.

    This is the level-of-detail choice a viewer makes: show the coarsest level
    that is still dense enough in the visible box. Returns 0 if no coarse level
    qualifies. ``bbox`` is ``((lo, ...), (hi, ...))``, inclusive.
    """
    if not isinstance(min_points, int) or min_points < 0:
        raise InvalidInputError(f"min_points must be a non-negative int, got {min_points!r}")
    try:
        ndim = len(bbox[0])
    except TypeError:
        raise InvalidInputError(f"bbox must be ((lo, ...), (hi, ...)), got {bbox!r}") from None
    lo, hi = box(bbox, "bbox", ndim)
    return _zvf.select_level(store_url(path), lo, hi, min_points, threads_count(threads))


__all__ = ["build_pyramid", "select_level"]
