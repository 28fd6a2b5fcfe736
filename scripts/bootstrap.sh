#!/usr/bin/env bash
# Installs everything zvf needs on a fresh Debian 12 machine, then builds it:
#   - system packages (apt-get), only those missing;
#   - a virtual environment in .venv with the build and test dependencies;
#   - the C++ library, CLI and tests in build/cpp (CMake + Ninja);
#   - the Python package (pip install . -> zarr_vectors and the zvf CLI in .venv).
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git rsync
  nlohmann-json3-dev libzstd-dev libblosc-dev libcurl4-openssl-dev libcli11-dev
  libgtest-dev libbenchmark-dev python3-venv python3-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" "numpy>=1.24" "zarr>=3.1,<3.2" "pytest>=8"

echo "bootstrap: building C++ (build/cpp)"
cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/cpp

echo "bootstrap: installing the Python package into .venv"
.venv/bin/python -m pip install -q --no-build-isolation .
