"""Reference oracle for the zvf test-suite.

This script is run by the interpreter of a *separate* virtual environment
that holds the reference implementation of Zarr Vectors, the PyPI package
``zarr-vectors==0.9.2``.  That package is also imported as ``zarr_vectors``,
so it can never share a process with our own package: the test-suite talks
to it only through this script, in a subprocess.

Subcommands::

    version
        Print {"version": ..., "module": ..., "prefix": ...} as JSON.

    read STORE OUT.npz [--level L] [--bbox=lo,lo,lo:hi,hi,hi] [--attrs=a,b]
        Read a point cloud with the reference ``read_points`` and save it to
        OUT.npz: the array "positions" and one array "attr_<name>" per vertex
        attribute.  Without --attrs every attribute present at the level is
        read (the reference's own ``read_points`` reads none by default);
        ``--attrs=`` (empty) reads none.

    validate STORE [--level 3]
        Run the reference validator and print
        {"errors": [...], "warnings": [...], "passed": [...]} as JSON.
        Exits 0 even when the store is invalid; a validator crash is
        reported as an error entry.

    write IN.npz STORE --chunk a,b,c [--bin a,b,c] [--compressor zstd|JSON-LIST]
        Write IN.npz ("positions" plus "attr_<name>" arrays) with the
        reference ``write_points`` and print its summary as JSON.

Everything the library prints goes to stderr, so stdout carries only the
JSON document.  Use ``--bbox=...`` (with "=") since bounds may be negative.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from pathlib import Path

import numpy as np

REFERENCE_VERSION = "0.9.2"
ATTR_PREFIX = "attr_"


def _reference():
    """Import the reference package, refusing any copy outside this venv."""
    import importlib.metadata

    import zarr_vectors

    module_file = Path(zarr_vectors.__file__).resolve()
    prefix = Path(sys.prefix).resolve()
    if prefix not in module_file.parents:
        raise SystemExit(
            f"ref_oracle: zarr_vectors was imported from {module_file}, "
            f"which is not inside this interpreter's prefix {prefix}"
        )
    version = importlib.metadata.version("zarr-vectors")
    if version != REFERENCE_VERSION:
        raise SystemExit(
            f"ref_oracle: expected zarr-vectors=={REFERENCE_VERSION}, found {version}"
        )
    return zarr_vectors, module_file, version


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip() != ""]


def _parse_bbox(text: str) -> tuple[list[float], list[float]]:
    lo, sep, hi = text.partition(":")
    if not sep:
        raise SystemExit(f"ref_oracle: --bbox must look like lo,lo,lo:hi,hi,hi, got {text!r}")
    lo_v, hi_v = _floats(lo), _floats(hi)
    if len(lo_v) != len(hi_v) or not lo_v:
        raise SystemExit(f"ref_oracle: --bbox corners differ in length: {text!r}")
    return lo_v, hi_v


def _attribute_names(store: str, level: int) -> list[str]:
    """Names of the vertex attributes present at ``level`` of ``store``."""
    from zarr_vectors.core.store import get_resolution_level, open_store

    root = open_store(store)
    level_group = get_resolution_level(root, level)
    try:
        family = level_group["vertex_attributes"]
    except Exception:
        return []
    return sorted(family.children())


def cmd_version(args: argparse.Namespace) -> int:
    _, module_file, version = _reference()
    print(json.dumps({"version": version, "module": str(module_file), "prefix": sys.prefix}))
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    _reference()
    from zarr_vectors.types.points import read_points

    if args.attrs is None:
        with contextlib.redirect_stdout(sys.stderr):
            names = _attribute_names(args.store, args.level)
    else:
        names = [n for n in args.attrs.split(",") if n]
    bbox = _parse_bbox(args.bbox) if args.bbox else None
    with contextlib.redirect_stdout(sys.stderr):
        result = read_points(
            args.store, level=args.level, bbox=bbox, attribute_names=names or None
        )
    attrs = result.get("vertex_attributes")
    if attrs is None:
        attrs = result.get("attributes") or {}
    arrays = {"positions": np.asarray(result["positions"])}
    for name in names:
        if name not in attrs:
            raise SystemExit(f"ref_oracle: reference read returned no attribute {name!r}")
        arrays[ATTR_PREFIX + name] = np.asarray(attrs[name])
    np.savez(args.out, **arrays)
    print(json.dumps({"vertex_count": int(arrays["positions"].shape[0]), "attributes": names}))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    _reference()
    from zarr_vectors.validate import validate

    report = {"errors": [], "warnings": [], "passed": []}
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = validate(args.store, level=args.level)
        report = {
            "errors": [str(m) for m in result.errors],
            "warnings": [str(m) for m in result.warnings],
            "passed": [str(m) for m in result.passed],
        }
    except Exception as exc:  # a crash is an invalid store, not an oracle failure
        report["errors"].append(
            f"reference validator raised {type(exc).__name__}: {exc}\n"
            + traceback.format_exc()
        )
    print(json.dumps(report))
    return 0


def cmd_write(args: argparse.Namespace) -> int:
    _reference()
    from zarr_vectors.types.points import write_points

    with np.load(args.input, allow_pickle=False) as data:
        positions = data["positions"]
        attrs = {
            key[len(ATTR_PREFIX):]: data[key]
            for key in data.files
            if key.startswith(ATTR_PREFIX)
        }
    kwargs = {"chunk_shape": tuple(_floats(args.chunk))}
    if args.bin:
        kwargs["bin_shape"] = tuple(_floats(args.bin))
    if attrs:
        kwargs["vertex_attributes"] = attrs
    if args.compressor and args.compressor != "none":
        # A JSON list is the reference's list-of-codecs form ([{"name": "gzip"}, ...]).
        c = args.compressor
        kwargs["compressor"] = json.loads(c) if c.lstrip().startswith("[") else c
    if args.dtype:
        kwargs["dtype"] = args.dtype
    with contextlib.redirect_stdout(sys.stderr):
        summary = write_points(args.store, positions, **kwargs)
    print(json.dumps(dict(summary), default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ref_oracle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("version")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("read")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--level", type=int, default=0)
    p.add_argument("--bbox", default=None)
    p.add_argument("--attrs", default=None)
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("validate")
    p.add_argument("store")
    p.add_argument("--level", type=int, default=3)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("write")
    p.add_argument("input")
    p.add_argument("store")
    p.add_argument("--chunk", required=True)
    p.add_argument("--bin", default=None)
    p.add_argument("--compressor", default=None)
    p.add_argument("--dtype", default=None)
    p.set_defaults(func=cmd_write)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
