"""Exceptions raised by zarr_vectors.

Each class also derives from the builtin a caller would naturally catch
(``ValueError`` for bad input, ``FileNotFoundError`` for a missing store...),
so ``except ValueError`` keeps working.
"""


class ZvfError(Exception):
    """Base class of every error raised by zarr_vectors."""


class InvalidInputError(ZvfError, ValueError):
    """A caller passed a bad value: shape, dtype, NaN, range, name, option."""


class StoreNotFoundError(ZvfError, FileNotFoundError):
    """The store, level or key does not exist, or the store is not finalised."""


class CorruptStoreError(ZvfError):
    """Bytes in the store do not decode (truncated cell, bad JSON, bad magic)."""


class PartitionConflictError(ZvfError):
    """Partitions disagree, overlap, are incomplete, or leave gaps."""


class StoreIOError(ZvfError, OSError):
    """The filesystem or the network failed."""


class UnsupportedStoreError(ZvfError, NotImplementedError):
    """A valid ZV store that uses a feature zvf does not read (the reference's
    sharded or attribute-chunked stores)."""


__all__ = [
    "ZvfError",
    "InvalidInputError",
    "StoreNotFoundError",
    "CorruptStoreError",
    "PartitionConflictError",
    "StoreIOError",
    "UnsupportedStoreError",
]
