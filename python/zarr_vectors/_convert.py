"""Conversion and validation of Python arguments before they reach the engine.

The engine validates everything again; this layer only turns Python values
into the plain shapes the bindings take, with errors phrased in Python terms.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError

_NUMERIC = set("iufb")  # bool and float16 attributes too: the reference writes both


def store_url(path: Any) -> str:
    """Accepts str, os.PathLike or the root group open_store() returned; returns
    the string the engine opens."""
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        if not text:
            raise InvalidInputError("store path is empty")
        return text
    import zarr

    if isinstance(path, zarr.Group):
        from .core.store import store_path  # that module imports this one: import here

        return store_path(path)
    raise InvalidInputError(
        f"store path must be a str, an os.PathLike or a zarr.Group from open_store(), got {type(path).__name__}"
    )


def native_order(arr: np.ndarray) -> np.ndarray:
    """The same values in the machine's byte order: the engine reads raw bytes, so a
    big-endian array (from a file written elsewhere) would otherwise be read swapped."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def positions_array(positions: Any) -> np.ndarray:
    arr = native_order(np.asarray(positions))
    if arr.dtype not in (np.float32, np.float64):
        raise InvalidInputError(
            f"positions have dtype {arr.dtype}; expected float32 or float64 "
            "(convert explicitly, e.g. positions.astype(np.float32))"
        )
    if arr.ndim != 2 or not 2 <= arr.shape[1] <= 4:
        raise InvalidInputError(
            f"positions have shape {arr.shape}; expected (N, D) with D in 2..4"
        )
    return np.ascontiguousarray(arr)


def attribute_arrays(attributes: Mapping[str, Any] | None, n: int) -> list[tuple[str, np.ndarray]]:
    if attributes is None:
        return []
    if not isinstance(attributes, Mapping):
        raise InvalidInputError(
            f"attributes must be a dict of name -> array, got {type(attributes).__name__}"
        )
    out = []
    for name, values in attributes.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"attribute name {name!r} is not a str")
        arr = native_order(np.asarray(values))
        if arr.dtype.kind not in _NUMERIC or arr.dtype.itemsize not in (1, 2, 4, 8):
            raise InvalidInputError(
                f"attribute {name!r} has dtype {arr.dtype}; expected a numeric dtype "
                "(float16, float32, float64, int8..int64, uint8..uint64 or bool)"
            )
        if arr.ndim not in (1, 2):
            raise InvalidInputError(
                f"attribute {name!r} has shape {arr.shape}; expected ({n},) or ({n}, C)"
            )
        if arr.shape[0] != n:
            raise InvalidInputError(
                f"attribute {name!r} has {arr.shape[0]} rows; expected {n} (one per position)"
            )
        out.append((name, np.ascontiguousarray(arr)))
    return out


def shape_tuple(value: Any, name: str, ndim: int | None = None) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, (int, float, str, bytes)):
        raise InvalidInputError(f"{name} must be a sequence of numbers, one per axis, got {value!r}")
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a sequence of numbers, got {value!r}") from None
    if ndim is not None and len(out) != ndim:
        raise InvalidInputError(f"{name} {tuple(value)} has {len(out)} values; expected {ndim}")
    return out


def pair(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a (lo, hi) pair of numbers, got {value!r}") from None
    if math.isnan(lo) or math.isnan(hi):
        raise InvalidInputError(f"{name} {value!r} holds NaN: expected a (lo, hi) pair of numbers with lo < hi")
    if not lo < hi:
        raise InvalidInputError(f"{name} {value!r} is empty: expected lo < hi (half-open [lo, hi))")
    return lo, hi


def box(value: Any, name: str, ndim: int) -> tuple[list[float], list[float]]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be ((lo, ...), (hi, ...)), got {value!r}") from None
    return shape_tuple(lo, f"{name} lower corner", ndim), shape_tuple(hi, f"{name} upper corner", ndim)


def compressor_name(compressor: Any) -> str:
    """The engine's text for ``compressor=``: a preset name, or a list of
    codecs (dicts, or bare names) as zarr-vectors takes it, sent as JSON."""
    if compressor is None or compressor is False:
        return "none"
    if isinstance(compressor, str):
        return compressor
    if isinstance(compressor, (list, tuple)):
        for codec in compressor:
            if not isinstance(codec, (dict, str)):
                raise InvalidInputError(
                    f"compressor list entries must be dicts with a 'name' key (or codec names); got {codec!r}"
                )
        try:
            return json.dumps(list(compressor))
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"compressor {compressor!r} is not JSON-serialisable: {e}") from None
    raise InvalidInputError(
        "compressor must be None, 'none', 'zstd', 'blosc', 'gzip' or a list of codec dicts "
        f"(e.g. [{{'name': 'zstd', 'configuration': {{'level': 3}}}}, {{'name': 'crc32c'}}]), got {compressor!r}"
    )


MAX_THREADS = 4096


def threads_count(threads: Any) -> int:
    if threads is None:
        return 0
    if not isinstance(threads, int) or isinstance(threads, bool) or not 0 <= threads <= MAX_THREADS:
        raise InvalidInputError(
            f"threads must be an int from 0 to {MAX_THREADS} (0 = the CPUs this process may use), got {threads!r}")
    return threads


def progress_callback(progress: Any) -> Any:
    if progress is not None and not callable(progress):
        raise InvalidInputError(f"progress must be a callable(done, total) or None, got {progress!r}")
    return progress


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return bool(value)
