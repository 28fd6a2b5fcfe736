#!/usr/bin/env bash
# The whole test suite: C++ unit tests (ctest) and Python tests (pytest), the
# latter including interoperability tests against zarr-vectors 0.9.2, which the
# suite installs in its own virtual environment (.cache/reference-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

echo "== C++ unit tests"
ctest --test-dir build/cpp --output-on-failure -j2

echo "== Python tests"
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pytest -q "$@"
