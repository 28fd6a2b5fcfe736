"""The finalisation job: run once, after every partition job succeeded.

    python finalise_store.py --output /scratch/scan.zarrvectors

Merges the partitions and writes the store's metadata, builds the pyramid
(unless --no-pyramid), then consolidates metadata.
Running it again on a finalised store changes nothing.
"""

import argparse

import zarr

import zarr_vectors
from zarr_vectors.core.multiscale import write_multiscale_metadata
from zarr_vectors.core.store import open_store
from zarr_vectors.errors import ZvfError
from zarr_vectors.multiresolution.coarsen import build_pyramid


def main():
    parser = argparse.ArgumentParser(description="Finalise a store written by partition jobs.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--allow-gaps", action="store_true",
                        help="finalise even if slabs are missing along the partition axis")
    parser.add_argument("--no-pyramid", action="store_true", help="skip build_pyramid")
    args = parser.parse_args()

    try:
        if args.allow_gaps:
            report = zarr_vectors.finalise(args.output, allow_gaps=True)
            for gap in report["gaps"]:
                print(f"warning: no partition covers {gap}")
        root = open_store(args.output, mode="r+")
        write_multiscale_metadata(root)  # merges pending partitions; no-op if none
    except ZvfError as err:
        raise SystemExit(f"finalise_store.py: {err}") from None

    if not args.no_pyramid:
        build_pyramid(args.output, factors=[(2.0, 1.0), (2.0, 1.0)])
    else:
        print("No pyramid built (level 0 only).")
    zarr.consolidate_metadata(root.store)  # last: after every metadata write
    print("Store finalised.")


if __name__ == "__main__":
    main()
