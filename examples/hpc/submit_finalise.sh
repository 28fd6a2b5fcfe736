#!/bin/bash
#SBATCH --job-name=zvf_finalise
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=zvf_finalise_%j.out
#
# The finalisation job: runs once every array task succeeded. The dependency
# goes on the command line (#SBATCH lines are not shell-expanded):
#
#   sbatch --dependency=afterok:${ARRAY_JOB_ID} submit_finalise.sh
#
# Environment: OUTPUT (the store, required), PYTHON (default: python),
# FINALISE_ARGS (extra options for finalise_store.py, e.g. --allow-gaps).
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the store path}"
examples=${ZVF_EXAMPLES:-${SLURM_SUBMIT_DIR:-$(dirname "$0")}}

# shellcheck disable=SC2086  # FINALISE_ARGS holds separate options
"${PYTHON:-python}" "$examples/finalise_store.py" --output "${OUTPUT}" ${FINALISE_ARGS:-}
