"""Benchmark outputs are retired, not deleted, between repeats.

Two things on these machines make "delete the store, write it again" time
something other than the write:
  - the root filesystem is an ext4 without a journal: creating a file within a
    minute of deleting others scans the deleted inodes one by one (ext4's
    recently_deleted()), the more so the more files were deleted;
  - a DAMON scheme pages out page cache unused for about a minute, so old
    outputs left dirty in memory get written back in the middle of a later
    measurement.
retire() therefore renames an output into a `.retired` directory next to it and
truncates its files to zero bytes: the data (and its dirty pages) go at once,
the inodes stay allocated. The run's temp directory, and with it everything
retired, is deleted after the last measurement. Both sides (ours and the
reference) use it.
"""

from __future__ import annotations

import itertools
import os

_serial = itertools.count()


def retire(path: str) -> None:
    """Move a file or directory out of the way and empty its files (no-op if it does not exist)."""
    if not os.path.lexists(path):
        return
    parent = os.path.join(os.path.dirname(os.path.abspath(path)), ".retired")
    os.makedirs(parent, exist_ok=True)
    moved = os.path.join(parent, f"{os.getpid()}-{next(_serial)}-{os.path.basename(path)}")
    os.rename(path, moved)
    if os.path.isfile(moved):
        os.truncate(moved, 0)
    for d, _, files in os.walk(moved):
        for f in files:
            os.truncate(os.path.join(d, f), 0)
