#!/bin/bash
#SBATCH --job-name=zvf_write
#SBATCH --array=0-19              # one task per z-slab; must match N_SLABS
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=zvf_write_%A_%a.out
#
# One Slurm array task per z-slab, each running write_partition.py. Submit from
# the directory holding write_partition.py (or set ZVF_EXAMPLES), e.g.
#
#   export OUTPUT=/scratch/scan.zarrvectors N_SLABS=20
#   ARRAY_JOB_ID=$(sbatch --parsable --array=0-$((N_SLABS - 1)) submit_array.sh)
#   sbatch --dependency=afterok:${ARRAY_JOB_ID} submit_finalise.sh
#
# Environment (sbatch passes the submitting shell's environment to the job):
#   OUTPUT        the shared store (required)
#   N_SLABS       number of slabs (required: a re-run of one task, --array=7,
#                 must cut the same slabs as the first run)
#   CHUNK_SIZE    edge of the cubic chunks (default 500; bins: BIN_SIZE, 125)
#   TOTAL_POINTS  points in the synthetic cloud (default 20000)
#   SEED          seed of the synthetic cloud (default 0)
#   PYTHON        interpreter with zarr_vectors installed (default: python)
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the store path}"
: "${N_SLABS:?set N_SLABS to the number of slabs}"
examples=${ZVF_EXAMPLES:-${SLURM_SUBMIT_DIR:-$(dirname "$0")}}

"${PYTHON:-python}" "$examples/write_partition.py" \
    --slab-index "${SLURM_ARRAY_TASK_ID}" \
    --n-slabs "${N_SLABS}" \
    --output "${OUTPUT}" \
    --chunk-size "${CHUNK_SIZE:-500}" \
    --bin-size "${BIN_SIZE:-125}" \
    --total-points "${TOTAL_POINTS:-20000}" \
    --seed "${SEED:-0}"
