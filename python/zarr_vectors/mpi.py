"""Collective writes from MPI ranks whose points are not spatially partitioned.

When every rank already holds the points of its own slab, each rank calls
``write_points_partition`` for that slab (see docs/hpc.md). When ranks hold
arbitrary points (a shuffled reader, the output of a simulation step), call
:func:`write_points_collective` on every rank instead: it exchanges the points
so that each chunk has exactly one owner rank, each owner writes one partition,
and rank 0 finalises. :func:`build_pyramid_collective` then builds the store's
coarse levels with one share per rank, and rank 0 publishes them.

mpi4py is imported only when the helper runs; it is not a dependency of the
rest of the package.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import errors as _errors
from ._convert import attribute_arrays, compressor_name, positions_array, shape_tuple, store_url
from .errors import InvalidInputError, ZvfError

_AXIS_KW = ("x_range", "y_range", "z_range")
_MAX_BUCKETS = 1 << 20  # length of the per-axis histogram used to balance owners


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError(
            "zarr_vectors.mpi needs mpi4py, which is not installed: `pip install mpi4py` "
            "(it builds against your MPI's mpicc; on Debian: apt-get install libopenmpi-dev)"
        ) from err
    return MPI


def _signature(path, positions, chunk_shape, bin_shape, attributes, compressor):
    """What every rank must agree on, or the error this rank's input raises."""
    pos = positions_array(positions)
    if not np.isfinite(pos).all():
        bad = int(np.flatnonzero(~np.isfinite(pos).all(axis=1))[0])
        raise InvalidInputError(f"position {bad} is not finite: {pos[bad].tolist()}")
    attrs = sorted(attribute_arrays(attributes, pos.shape[0]), key=lambda item: item[0])
    chunk = shape_tuple(chunk_shape, "chunk_shape", pos.shape[1])
    if chunk is None:
        raise InvalidInputError("chunk_shape is required")
    if not all(math.isfinite(c) and c > 0 for c in chunk):
        raise InvalidInputError(f"chunk_shape {tuple(chunk_shape)} must be positive and finite")
    bins = shape_tuple(bin_shape, "bin_shape", pos.shape[1])
    if bins is not None and not all(math.isfinite(b) and b > 0 for b in bins):
        raise InvalidInputError(f"bin_shape {tuple(bin_shape)} must be positive and finite")
    url = store_url(path)
    if "://" not in url:
        url = os.path.abspath(url)
    sig = {
        "store": url,
        "ndim": pos.shape[1],
        "position dtype": str(pos.dtype),
        "chunk_shape": tuple(chunk),
        "bin_shape": None if bins is None else tuple(bins),
        "compressor": compressor_name(compressor),
        "attributes": [(name, str(arr.dtype), arr.shape[1:]) for name, arr in attrs],
    }
    return sig, pos, attrs, chunk, bins


def _raise_for(statuses, what, own=None, who="write_points_collective"):
    """Raise on every rank when any rank reported an error: the rank that
    failed re-raises its own exception (``own``), the others an error of the
    same class (when it is one of ours) naming every rank that failed."""
    failed = [(r, s) for r, s in enumerate(statuses) if s is not None]
    if not failed:
        return
    if own is not None:
        raise own
    text = "; ".join(f"rank {r}: {msg}" for r, (_cls, msg) in failed)
    cls = getattr(_errors, failed[0][1][0], None)
    if not (isinstance(cls, type) and issubclass(cls, ZvfError)):
        cls = ZvfError
    raise cls(f"{who}: {what} failed on {len(failed)} rank(s): {text}")


def _status(err):
    return None if err is None else (type(err).__name__, str(err))


def _edges(axis_chunk, axis_bin):
    """Physical coordinate of chunk edge k, computed as the engine's bin grid does."""
    if axis_bin is None:
        return lambda k: float(k) * axis_chunk
    per_chunk = max(int(round(axis_chunk / axis_bin)), 1)
    return lambda k: float(k * per_chunk) * axis_bin


def _plan(comm, MPI, pos, chunk, bins, size):
    """Choose the partition axis and the owners' contiguous, chunk-aligned ranges.

    Returns (axis, boundaries) where ``boundaries`` has k+1 increasing
    doubles for k owner ranks (ranks 0..k-1); owner j holds [b[j], b[j+1]).
    """
    ndim = pos.shape[1]
    n_local = pos.shape[0]
    lo = pos.min(axis=0).astype(np.float64) if n_local else np.full(ndim, np.inf)
    hi = pos.max(axis=0).astype(np.float64) if n_local else np.full(ndim, -np.inf)
    g_lo = np.empty(ndim)
    g_hi = np.empty(ndim)
    comm.Allreduce(lo, g_lo, op=MPI.MIN)
    comm.Allreduce(hi, g_hi, op=MPI.MAX)
    total = comm.allreduce(n_local, op=MPI.SUM)
    if total == 0:
        raise InvalidInputError("write_points_collective: no rank holds any point")

    # Longest axis in chunks (x, y or z: the axes a partition range can name).
    axes = range(min(ndim, 3))
    c_lo = {a: math.floor(g_lo[a] / chunk[a]) for a in axes}
    c_hi = {a: math.floor(g_hi[a] / chunk[a]) for a in axes}
    axis = max(axes, key=lambda a: (c_hi[a] - c_lo[a], -a))
    n_chunks = c_hi[axis] - c_lo[axis] + 1
    group = -(-n_chunks // _MAX_BUCKETS)  # chunks per histogram bucket
    n_buckets = -(-n_chunks // group)

    # Points per bucket along the axis, summed over ranks.
    local_idx = np.floor(pos[:, axis].astype(np.float64) / chunk[axis]).astype(np.int64) - c_lo[axis]
    local_idx = np.clip(local_idx // group, 0, n_buckets - 1)
    counts = np.bincount(local_idx, minlength=n_buckets).astype(np.int64)
    hist = np.empty_like(counts)
    comm.Allreduce(counts, hist, op=MPI.SUM)

    # Owners start at non-empty buckets, splitting the points evenly.
    nonempty = np.flatnonzero(hist)
    cum = np.cumsum(hist[nonempty])
    starts = {0}
    for r in range(1, size):
        s = int(np.searchsorted(cum, total * r / size, side="right"))
        starts.add(min(s, len(nonempty) - 1))
    starts = sorted(starts)
    edge = _edges(chunk[axis], None if bins is None else bins[axis])
    inner = [edge(c_lo[axis] + int(nonempty[s]) * group) for s in starts[1:]]
    first = min(edge(c_lo[axis] + int(nonempty[0]) * group), g_lo[axis])
    last = max(edge(c_lo[axis] + (int(nonempty[-1]) + 1) * group), float(np.nextafter(g_hi[axis], np.inf)))
    boundaries = [first, *inner, last]
    # Equal edges (possible only through rounding) would make empty ranges.
    boundaries = [b for i, b in enumerate(boundaries) if i == 0 or b > boundaries[i - 1]]
    return axis, boundaries


def _exchange(comm, MPI, pos, attrs, owner, size):
    """Alltoallv every row to its owner; returns (positions, {name: array})."""
    arrays = [pos] + [arr for _, arr in attrs]
    columns = [int(np.prod(a.shape[1:], dtype=np.int64)) for a in arrays]
    widths = [a.dtype.itemsize * c for a, c in zip(arrays, columns)]
    row = sum(widths)
    n = pos.shape[0]
    order = np.argsort(owner, kind="stable")
    send = np.empty((n, row), dtype=np.uint8)
    offset = 0
    for arr, c, w in zip(arrays, columns, widths):
        send[:, offset:offset + w] = np.ascontiguousarray(arr[order]).reshape(n, c).view(np.uint8)
        offset += w
    send_counts = np.bincount(owner, minlength=size).astype(np.int64)
    recv_counts = np.empty(size, dtype=np.int64)
    comm.Alltoall(send_counts, recv_counts)
    n_recv = int(recv_counts.sum())
    too_many = max(pos.shape[0], n_recv) >= 2**31  # MPI counts are C ints
    if comm.allreduce(too_many, op=MPI.LOR):
        raise InvalidInputError("write_points_collective: a rank holds 2**31 rows or more; use more ranks")
    recv = np.empty((n_recv, row), dtype=np.uint8)
    rowtype = MPI.BYTE.Create_contiguous(row).Commit()
    try:
        displ = lambda c: np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int32)  # noqa: E731
        comm.Alltoallv(
            [send, (send_counts.astype(np.int32), displ(send_counts)), rowtype],
            [recv, (recv_counts.astype(np.int32), displ(recv_counts)), rowtype],
        )
    finally:
        rowtype.Free()
    out = []
    offset = 0
    for arr, w in zip(arrays, widths):
        col = np.ascontiguousarray(recv[:, offset:offset + w])
        out.append(col.view(arr.dtype).reshape((n_recv,) + arr.shape[1:]))
        offset += w
    return out[0], {name: a for (name, _), a in zip(attrs, out[1:])}


def write_points_collective(
    path: Any,
    positions: Any,
    *,
    chunk_shape: Any,
    bin_shape: Any = None,
    attributes: Mapping[str, Any] | None = None,
    compressor: str | Sequence[Mapping[str, Any] | str] | None = None,
    comm: Any = None,
    threads: int | None = None,
    durable: bool = False,
) -> dict[str, Any]:
    """Write one store from the points of every rank of ``comm``; collective.

    Every rank of ``comm`` (default ``MPI.COMM_WORLD``) must call this, with
    its own points (any number, zero included, anywhere in space) and the
    same ``path``, ``chunk_shape``, ``bin_shape``, ``compressor`` and
    attribute names, dtypes and widths; a rank that differs is named in an
    :class:`~zarr_vectors.errors.InvalidInputError` raised on every rank.

    The helper splits the longest axis of the global bounds into contiguous
    slabs whose edges lie on chunk boundaries, balanced by point count, one
    per rank (fewer when there are fewer non-empty chunk slabs than ranks).
    It moves every point to its slab's owner with one ``Alltoallv``, each
    owner writes its slab with ``write_points_partition``, and rank 0
    finalises once every rank has written. An error on any rank is raised on
    every rank, naming the ranks that failed (an unexpected error in the
    middle of the exchange calls ``comm.Abort`` instead of leaving the other
    ranks waiting forever).

    The slabs depend on the data, so write a new store (or re-run with the
    same points, whose slabs then replace the earlier partitions): slabs of
    different data may overlap partitions already in the store, which is a
    :class:`~zarr_vectors.errors.PartitionConflictError`.

    ``durable=True`` passes on to the partitions and the finalisation: the
    call returns once the store is on stable storage (see ``write_points``).

    Returns a dict on every rank: ``rank``, ``axis`` (0, 1 or 2), ``range``
    (this rank's half-open ``(lo, hi)``, or None if it owns nothing),
    ``partition`` (the summary from ``write_points_partition``, or None) and
    ``finalise`` (the finalisation report, on rank 0; None elsewhere).
    """
    MPI = _mpi()
    if comm is None:
        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    # 1. Everybody's input must be valid and agree with rank 0's.
    try:
        sig, pos, attrs, chunk, bins = _signature(path, positions, chunk_shape, bin_shape, attributes, compressor)
        err = None
    except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
        sig, err = None, exc
    _raise_for(comm.allgather(_status(err)), "input validation", err)
    sigs = comm.allgather(sig)
    for r, other in enumerate(sigs):
        diffs = [k for k in sigs[0] if other[k] != sigs[0][k]]
        if diffs:
            k = diffs[0]
            raise InvalidInputError(
                f"write_points_collective: rank {r} passes {k} {other[k]!r} but rank 0 passes "
                f"{sigs[0][k]!r}; every rank must pass the same {', '.join(diffs)}"
            )

    # 2. Owners and their ranges, and 3. the exchange. These steps interleave
    # collectives with local work: a rank failing in between would leave the
    # others waiting forever, so an unexpected error aborts the communicator.
    try:
        axis, bounds = _plan(comm, MPI, pos, chunk, bins, size)
        owners = len(bounds) - 1
        coord = pos[:, axis].astype(np.float64)
        owner = np.searchsorted(np.asarray(bounds[1:-1]), coord, side="right").astype(np.int64)
        mine, mine_attrs = _exchange(comm, MPI, pos, attrs, owner, size)
    except InvalidInputError:
        raise  # raised by every rank alike (decided on reduced values)
    except BaseException:
        import sys
        import traceback

        traceback.print_exc()
        print(f"zarr_vectors.mpi: rank {rank} failed inside a collective step of "
              "write_points_collective; aborting the communicator", file=sys.stderr, flush=True)
        comm.Abort(1)
        raise

    # 4. Each owner writes its slab.
    my_range = (bounds[rank], bounds[rank + 1]) if rank < owners else None
    summary, err = None, None
    try:
        if my_range is not None:
            from .types.points import write_points_partition

            summary = write_points_partition(
                path, mine, chunk_shape=chunk, bin_shape=bins, attributes=mine_attrs,
                compressor=compressor, threads=threads, durable=durable, **{_AXIS_KW[axis]: my_range},
            )
    except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
        err = exc
    _raise_for(comm.allgather(_status(err)), "write_points_partition", err)  # also the barrier

    # 5. Rank 0 finalises; everyone learns the outcome.
    report, err = None, None
    if rank == 0:
        try:
            from .core.multiscale import finalise

            report = finalise(path, threads=threads, durable=durable)
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            err = exc
    _raise_for([comm.bcast(_status(err), root=0)], "finalisation on rank 0", err)
    return {"rank": rank, "axis": axis, "range": my_range, "partition": summary, "finalise": report}


def build_pyramid_collective(
    path: Any,
    factors: Any,
    *,
    chunk_scale_factors: Any = None,
    reductions: Mapping[str, str] | None = None,
    comm: Any = None,
    threads: int | None = None,
    durable: bool = False,
) -> dict[str, Any]:
    """Build the coarse levels of a finalised store on every rank of ``comm``; collective.

    Every rank of ``comm`` (default ``MPI.COMM_WORLD``) must call this with the
    same ``path``, ``factors``, ``chunk_scale_factors`` and ``reductions``
    (a rank that differs is named in an
    :class:`~zarr_vectors.errors.InvalidInputError` raised on every rank).
    Rank ``r`` of ``n`` builds share ``r`` of every level's coarse chunks
    (``build_pyramid(..., part=(r, n))``); once every rank has finished, rank
    0 publishes the levels (``finalise_parts=True``). An error on any rank is
    raised on every rank, naming the ranks that failed; the store then keeps
    its published levels, and running the call again completes the pyramid.
    Running it again after success writes nothing.

    A pyramid built before with other settings must be replaced by a
    single-process ``build_pyramid(..., overwrite=True)`` first. ``durable``
    passes on to every ``build_pyramid`` call (see ``build_pyramid``).

    Returns a dict on every rank: ``rank``, ``part`` (this rank's report from
    ``build_pyramid``) and ``pyramid`` (the published pyramid's report, on
    rank 0; None elsewhere).
    """
    MPI = _mpi()
    if comm is None:
        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    who = "build_pyramid_collective"
    from .multiresolution.coarsen import build_pyramid

    url = store_url(path)
    if "://" not in url:
        url = os.path.abspath(url)
    settings = {
        "store": url,
        "factors": repr(factors),
        "chunk_scale_factors": repr(chunk_scale_factors),
        "reductions": repr(sorted((reductions or {}).items())),
    }
    everyone = comm.allgather(settings)
    for r, other in enumerate(everyone):
        diffs = [k for k in settings if other[k] != everyone[0][k]]
        if diffs:
            k = diffs[0]
            raise InvalidInputError(
                f"{who}: rank {r} passes {k} {other[k]} but rank 0 passes {everyone[0][k]}; "
                f"every rank must pass the same {', '.join(diffs)}"
            )
    options = dict(chunk_scale_factors=chunk_scale_factors, reductions=reductions, threads=threads, durable=durable)

    # Each rank builds its part; the allgather is also the barrier before publishing.
    part, err = None, None
    try:
        part = build_pyramid(path, factors, part=(rank, size), **options)
    except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
        err = exc
    _raise_for(comm.allgather(_status(err)), "building the pyramid parts", err, who)

    # Rank 0 publishes; everyone learns the outcome.
    pyramid, err = None, None
    if rank == 0:
        try:
            pyramid = build_pyramid(path, factors, finalise_parts=True, **options)
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            err = exc
    _raise_for([comm.bcast(_status(err), root=0)], "publishing the pyramid on rank 0", err, who)
    return {"rank": rank, "part": part, "pyramid": pyramid}


__all__ = ["build_pyramid_collective", "write_points_collective"]
