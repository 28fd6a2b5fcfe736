#!/usr/bin/env bash
# The benchmark suite in one command: bootstrap (deps, build, install), then bench/run_all.py.
# Arguments go to run_all.py, e.g.:
#   bash scripts/bench.sh --size full --out-dir docs/bench     # issue 6's sizes, 3 repeats
#   bash scripts/bench.sh --size tiny --repeat 1               # seconds: a quick check
# The reference zarr-vectors 0.9.2 runs from $ZVF_REFERENCE_VENV (default .cache/reference-venv),
# created here, as the test suite does, if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
ZVF_REFERENCE_PYTHON=$(.venv/bin/python -c \
  'import sys; sys.path.insert(0, "tests"); from conftest import ensure_reference_venv; print(ensure_reference_venv())')
export ZVF_REFERENCE_PYTHON
exec .venv/bin/python bench/run_all.py "$@"
