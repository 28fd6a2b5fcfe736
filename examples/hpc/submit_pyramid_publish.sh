#!/bin/bash
#SBATCH --job-name=zvf_pyramid_publish
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=zvf_pyramid_publish_%j.out
#
# Publishes the pyramid that the tasks of submit_pyramid_part.sh built: checks
# that every share is there (naming any that is missing, exit 6) and writes the
# levels' metadata, the root last. Submit with afterok on the whole array:
#
#   sbatch --dependency=afterok:${PARTS} submit_pyramid_publish.sh
#
# Environment: OUTPUT (the store, required), FACTORS (as for the parts),
# ZVF (default: zvf on PATH).
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the store path}"
factors=()
for f in ${FACTORS:-2,1 2,1}; do factors+=(--factors "$f"); done

"${ZVF:-zvf}" pyramid "$OUTPUT" "${factors[@]}" --finalise-parts
