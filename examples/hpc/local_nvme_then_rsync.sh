#!/bin/bash
#SBATCH --job-name=zvf_local
#SBATCH --array=0-19              # one task per z-slab; must match N_SLABS
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=zvf_local_%A_%a.out
#
# Each task writes its slab into a store of its own on node-local disk, then
# copies it into the shared store with rsync. The partitions own disjoint
# files, so the copies merge into one store; finalise it afterwards with
# submit_finalise.sh (--dependency=afterok:<this array's job id>).
#
# Environment: OUTPUT (the shared store, required), N_SLABS (required),
# LOCAL_SCRATCH (node-local directory; default $TMPDIR or /tmp),
# CHUNK_SIZE, BIN_SIZE, TOTAL_POINTS, SEED, PYTHON as in submit_array.sh.
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the shared store path}"
: "${N_SLABS:?set N_SLABS to the number of slabs}"
examples=${ZVF_EXAMPLES:-${SLURM_SUBMIT_DIR:-$(dirname "$0")}}
local_store="${LOCAL_SCRATCH:-${TMPDIR:-/tmp}}/scan_${SLURM_JOB_ID}.zarrvectors"
trap 'rm -rf "$local_store"' EXIT

"${PYTHON:-python}" "$examples/write_partition.py" \
    --slab-index "${SLURM_ARRAY_TASK_ID}" \
    --n-slabs "${N_SLABS}" \
    --output "$local_store" \
    --chunk-size "${CHUNK_SIZE:-500}" \
    --bin-size "${BIN_SIZE:-125}" \
    --total-points "${TOTAL_POINTS:-20000}" \
    --seed "${SEED:-0}"

# Copy to the shared file system at job end (trailing slashes: merge contents).
mkdir -p "$OUTPUT"
rsync -a "$local_store/" "$OUTPUT/"
