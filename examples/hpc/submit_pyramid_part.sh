#!/bin/bash
#SBATCH --job-name=zvf_pyramid
#SBATCH --array=0-3               # one task per share; must match N_PARTS
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=zvf_pyramid_%A_%a.out
#
# Task i of N_PARTS builds share i of every coarse level's chunks of a
# finalised store (`zvf pyramid --part i/N_PARTS`). Nothing is visible to
# readers until submit_pyramid_publish.sh runs, once every task succeeded:
#
#   PARTS=$(sbatch --parsable --dependency=afterok:${FINALISE_JOB_ID} \
#           --array=0-$((N_PARTS - 1)) submit_pyramid_part.sh)
#   sbatch --dependency=afterok:${PARTS} submit_pyramid_publish.sh
#
# Environment:
#   OUTPUT    the finalised store (required)
#   N_PARTS   number of shares (required: a re-run of one task, --array=2,
#             must split the levels the same way as the first run)
#   FACTORS   COARSEN,SPARSITY of each level, space-separated (default
#             "2,1 2,1"); the publishing job must use the same
#   ZVF       the zvf executable (default: zvf on PATH)
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the store path}"
: "${N_PARTS:?set N_PARTS to the number of pyramid parts}"
factors=()
for f in ${FACTORS:-2,1 2,1}; do factors+=(--factors "$f"); done

"${ZVF:-zvf}" pyramid "$OUTPUT" "${factors[@]}" \
    --part "${SLURM_ARRAY_TASK_ID}/${N_PARTS}" \
    --threads "${SLURM_CPUS_PER_TASK:-0}"
