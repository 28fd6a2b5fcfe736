"""One share of a pyramid build, stopped in the middle.

    python stall_pyramid.py MARKER STALL_AFTER STORE INDEX COUNT

Runs build_pyramid(STORE, factors 2,1 twice, part=(INDEX, COUNT)) on one
thread with a progress callback: once STALL_AFTER coarse chunks are written it
writes MARKER (the count) and sleeps, so the part has written cells but no
record. test_faults.py then kills the process with SIGKILL.
"""

import sys
import time
from pathlib import Path

from zarr_vectors.multiresolution.coarsen import build_pyramid

marker, stall_after = Path(sys.argv[1]), int(sys.argv[2])
store, index, count = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
calls = []


def progress(done, total):
    # Called once per coarse chunk this part built (with threads=1).
    calls.append(done)
    if len(calls) >= stall_after:
        marker.write_text(f"{len(calls)}\n")
        while True:
            time.sleep(60)


build_pyramid(store, [(2.0, 1.0), (2.0, 1.0)], part=(index, count), threads=1, progress=progress)
