"""Benchmark outputs are retired, not deleted, between repeats.

On an ext4 without a journal (these machines' root filesystem), creating a file
within a minute of deleting others scans the deleted inodes one by one
(ext4's recently_deleted()), so a benchmark that deletes its store and writes it
again times the filesystem's bookkeeping of its own deletions, and more so the
more files it deleted. retire() renames the output into a `.retired` directory
next to it instead; the run's temp directory (and with it everything retired) is
deleted once, after the last measurement. Both sides (ours and the reference)
use it. Costs disk space for the run's duration: a few GB at --size full.
"""

from __future__ import annotations

import itertools
import os

_serial = itertools.count()


def retire(path: str) -> None:
    """Move a file or directory out of the way (no-op if it does not exist)."""
    if not os.path.lexists(path):
        return
    parent = os.path.join(os.path.dirname(os.path.abspath(path)), ".retired")
    os.makedirs(parent, exist_ok=True)
    os.rename(path, os.path.join(parent, f"{os.getpid()}-{next(_serial)}-{os.path.basename(path)}"))
