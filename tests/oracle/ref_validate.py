"""Run the reference validator (zarr-vectors 0.9.2) on many stores at many levels.

Run by the interpreter of the reference virtual environment (see
``ref_oracle.py`` for why the reference never shares a process with our
package)::

    python ref_validate.py --levels 1,2,3,4,5 STORE [STORE ...]

One process for all of them, since importing the reference costs seconds.
Prints one JSON object on stdout: ``{STORE: {LEVEL: {"ok": bool, "errors":
[...], "warnings": [...]}}}``. A validator crash counts as an invalid store
(an error entry naming the exception), as in ``ref_oracle.py validate``.
Whatever the library prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import sys
from pathlib import Path

REFERENCE_VERSION = "0.9.2"


def _check_reference() -> None:
    import zarr_vectors

    module_file = Path(zarr_vectors.__file__).resolve()
    if Path(sys.prefix).resolve() not in module_file.parents:
        raise SystemExit(f"ref_validate: zarr_vectors comes from {module_file}, outside {sys.prefix}")
    version = importlib.metadata.version("zarr-vectors")
    if version != REFERENCE_VERSION:
        raise SystemExit(f"ref_validate: expected zarr-vectors=={REFERENCE_VERSION}, found {version}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ref_validate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="3", help="comma-separated validation levels")
    ap.add_argument("stores", nargs="+")
    args = ap.parse_args(argv)
    _check_reference()
    from zarr_vectors.validate import validate

    levels = [int(x) for x in args.levels.split(",") if x]
    out: dict[str, dict[str, dict]] = {}
    for store in args.stores:
        out[store] = {}
        for level in levels:
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    r = validate(store, level=level)
                entry = {"ok": r.ok, "errors": [str(m) for m in r.errors], "warnings": [str(m) for m in r.warnings]}
            except Exception as exc:  # a crash is an invalid store, not an oracle failure
                entry = {"ok": False, "errors": [f"reference validator raised {type(exc).__name__}: {exc}"],
                         "warnings": []}
            out[store][str(level)] = entry
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
