"""Build a pyramid with the reference implementation (zarr-vectors 0.9.2).

Run by the interpreter of the reference virtual environment (see
``ref_oracle.py`` for why the reference never shares a process with our
package)::

    python ref_pyramid.py STORE --factors 2,1 --factors 2,1 [--chunk-scale 1 --chunk-scale 2]

Each ``--factors C,S`` is one (coarsen, sparsity) pair, in level order.
``--chunk-scale`` is the reference's ``chunk_scale_factors`` entry per level
(an int, or one int per axis separated by commas); give it once per
``--factors`` or not at all.  With ``--time``, the build is timed inside this
process and the elapsed seconds are reported.  Prints one JSON line on stdout;
whatever the library prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import sys
import time
from pathlib import Path

REFERENCE_VERSION = "0.9.2"


def _check_reference() -> None:
    import zarr_vectors

    module_file = Path(zarr_vectors.__file__).resolve()
    if Path(sys.prefix).resolve() not in module_file.parents:
        raise SystemExit(f"ref_pyramid: zarr_vectors comes from {module_file}, outside {sys.prefix}")
    version = importlib.metadata.version("zarr-vectors")
    if version != REFERENCE_VERSION:
        raise SystemExit(f"ref_pyramid: expected zarr-vectors=={REFERENCE_VERSION}, found {version}")


def _pair(text: str) -> tuple[float, float]:
    parts = [float(v) for v in text.split(",")]
    if len(parts) == 1:
        parts.append(1.0)
    if len(parts) != 2:
        raise SystemExit(f"ref_pyramid: --factors takes C[,S], got {text!r}")
    return parts[0], parts[1]


def _scale(text: str):
    parts = [int(v) for v in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ref_pyramid", description=__doc__.split("\n\n")[0])
    ap.add_argument("store")
    ap.add_argument("--factors", action="append", required=True)
    ap.add_argument("--chunk-scale", action="append", default=None)
    ap.add_argument("--time", action="store_true")
    args = ap.parse_args(argv)
    _check_reference()
    from zarr_vectors.multiresolution.coarsen import build_pyramid

    factors = [_pair(f) for f in args.factors]
    kwargs = {}
    if args.chunk_scale:
        if len(args.chunk_scale) != len(factors):
            raise SystemExit("ref_pyramid: give --chunk-scale once per --factors")
        kwargs["chunk_scale_factors"] = [_scale(s) for s in args.chunk_scale]
    with contextlib.redirect_stdout(sys.stderr):
        start = time.perf_counter()
        build_pyramid(args.store, factors=factors, **kwargs)
        elapsed = time.perf_counter() - start
    out = {"levels": len(factors)}
    if args.time:
        out["seconds"] = elapsed
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
