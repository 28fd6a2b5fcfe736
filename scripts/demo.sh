#!/usr/bin/env bash
# The main job: build everything, then run a demo pipeline on the local
# filesystem (4 partitioned writers, finalisation, reads, the zvf CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${1:-$(mktemp -d)/scan.zarrvectors}
.venv/bin/python examples/demo_pipeline.py "$out"
