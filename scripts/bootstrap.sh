#!/usr/bin/env bash
# Installs everything zvf needs on a fresh Debian 12 machine, then builds it:
#   - system packages (apt-get), only those missing, from scripts/deps/*.apt;
#   - a virtual environment in .venv with scripts/deps/*.pip;
#   - the C++ library, CLI and tests in build/cpp (CMake + Ninja);
#   - the Python package (pip install . -> zarr_vectors and the zvf CLI in .venv).
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Dependencies are listed per area in scripts/deps/*.apt and *.pip (one per line).
mapfile -t APT_PACKAGES < <(cat scripts/deps/*.apt | sed -e 's/#.*//' -e '/^\s*$/d')
mapfile -t PIP_PACKAGES < <(cat scripts/deps/*.pip | sed -e 's/#.*//' -e '/^\s*$/d')
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
.venv/bin/python -m pip install -q "${PIP_PACKAGES[@]}"

echo "bootstrap: building C++ (build/cpp)"
cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/cpp

echo "bootstrap: installing the Python package into .venv"
.venv/bin/python -m pip install -q --no-build-isolation .
