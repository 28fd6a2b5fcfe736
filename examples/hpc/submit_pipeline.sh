#!/bin/bash
# Submits the whole pipeline from a login node, each job waiting for the one
# before it (afterok): the write array, the finalisation (without pyramid),
# the pyramid array, and the job that publishes the pyramid.
#
#   export OUTPUT=/scratch/scan.zarrvectors N_SLABS=20 N_PARTS=8
#   bash submit_pipeline.sh
#
# Environment: OUTPUT, N_SLABS (required), N_PARTS (default 4), FACTORS, and
# what the job scripts read (CHUNK_SIZE, BIN_SIZE, TOTAL_POINTS, SEED, PYTHON,
# ZVF); sbatch passes the environment on to every job. Prints the job ids.
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the store path}"
: "${N_SLABS:?set N_SLABS to the number of slabs}"
export N_PARTS=${N_PARTS:-4}
export ZVF_EXAMPLES=${ZVF_EXAMPLES:-$(cd "$(dirname "$0")" && pwd)}
examples=$ZVF_EXAMPLES

write=$(sbatch --parsable --array=0-$((N_SLABS - 1)) "$examples/submit_array.sh")
final=$(FINALISE_ARGS=--no-pyramid sbatch --parsable --dependency=afterok:"$write" \
        "$examples/submit_finalise.sh")
parts=$(sbatch --parsable --dependency=afterok:"$final" --array=0-$((N_PARTS - 1)) \
        "$examples/submit_pyramid_part.sh")
publish=$(sbatch --parsable --dependency=afterok:"$parts" "$examples/submit_pyramid_publish.sh")
echo "write=$write finalise=$final pyramid_parts=$parts publish=$publish"
