"""Machine probe: what the first touch of freshly allocated memory costs, right
after other memory was freed and after a pause.

Not a benchmark of ours: it explains part of the spread in the write figures.
A write sorts its input into new buffers (about as large as the input), so each
call touches that much fresh memory. On a virtual machine whose balloon driver
reports free pages to the host (virtio-balloon free page reporting, about 2 s
after they are freed), touching memory again after a pause makes the host fault
it back in, which is many times slower than the kernel's page zeroing.

    .venv/bin/python bench/machine_memory.py                 # 200 MB, pauses 0 and 3 s
    .venv/bin/python bench/machine_memory.py --mb 8 --pauses 0,0.1 --repeat 1 --json out.json

Prints a Markdown table (median [min-max] ms and GB/s per pause); --json also
writes the samples.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def first_touch_seconds(nbytes: int) -> float:
    """Allocate nbytes with numpy (huge pages where the kernel allows) and write one byte per 4 KiB page."""
    t0 = time.perf_counter()
    a = np.empty(nbytes, dtype=np.uint8)
    a[::4096] = 1
    elapsed = time.perf_counter() - t0
    del a
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=200.0, help="size of each allocation in MB (default 200)")
    ap.add_argument("--pauses", default="0,3", help="comma-separated pauses in seconds before each allocation")
    ap.add_argument("--repeat", type=int, default=5, help="allocations per pause (default 5)")
    ap.add_argument("--json", help="also write the samples to this file")
    args = ap.parse_args()
    if args.mb <= 0 or args.repeat <= 0:
        ap.error(f"--mb and --repeat must be positive, got {args.mb} and {args.repeat}")
    try:
        pauses = [float(p) for p in args.pauses.split(",")]
    except ValueError:
        ap.error(f"--pauses must be comma-separated numbers of seconds, got {args.pauses!r}")
    if any(p < 0 for p in pauses):
        ap.error(f"--pauses must not be negative, got {args.pauses!r}")
    nbytes = int(args.mb * 1e6)
    first_touch_seconds(nbytes)  # warm-up: the first allocation of the process
    samples: dict[str, list[float]] = {}
    for pause in pauses:
        runs = []
        for _ in range(args.repeat):
            time.sleep(pause)
            runs.append(first_touch_seconds(nbytes))
        samples[str(pause)] = runs
    print(f"First touch of {args.mb:g} MB of fresh memory (numpy.empty, one write per 4 KiB page)\n")
    print("| pause before allocating (s) | time (ms) | GB/s |")
    print("|---|---|---|")
    for pause, runs in samples.items():
        med = statistics.median(runs)
        print(f"| {pause} | {med * 1e3:.1f} [{min(runs) * 1e3:.1f}-{max(runs) * 1e3:.1f}] | {nbytes / med / 1e9:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bytes": nbytes, "samples_s": samples}, f, indent=1)


if __name__ == "__main__":
    main()
