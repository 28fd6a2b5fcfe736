"""examples/hpc/write_partition.py, stopped in the middle of writing.

    python stall_writer.py MARKER STALL_AFTER <write_partition.py arguments>

Runs the example's main() unchanged except that write_points_partition gets a
progress callback: once STALL_AFTER chunks are written it writes MARKER and
sleeps, so the partition has started (started.json, some chunks on disk) but
has no manifest. test_faults.py then kills the process with SIGKILL.
"""

import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpc"
sys.path.insert(0, str(EXAMPLES))

import write_partition  # noqa: E402

marker, stall_after = Path(sys.argv[1]), int(sys.argv[2])
real = write_partition.write_points_partition


def stalled(*args, **kwargs):
    def progress(done, total):
        if done >= stall_after:
            marker.write_text(f"{done}/{total}\n")
            while True:
                time.sleep(60)

    return real(*args, progress=progress, **kwargs)


write_partition.write_points_partition = stalled
sys.argv = [str(EXAMPLES / "write_partition.py"), *sys.argv[3:]]
write_partition.main()
