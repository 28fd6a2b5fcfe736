#!/bin/bash
#SBATCH --job-name=zvf_cli_write
#SBATCH --array=0-19              # one task per z-slab file
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=zvf_cli_write_%A_%a.out
#
# A job with no Python: each task hands its slab file to `zvf write-partition`.
# Slab i covers z in [i*SLAB_DZ, (i+1)*SLAB_DZ) and is read from INPUT_DIR:
#   slab_<i>.npy (positions) with slab_<i>_intensity.npy, or
#   slab_<i>.csv (columns x,y,z,intensity), or slab_<i>.ply (x,y,z,intensity).
# Then finalise in a dependent job:
#   sbatch --dependency=afterok:${ARRAY_JOB_ID} --wrap "zvf finalise ${OUTPUT}"
#
# Environment: OUTPUT (the store) and INPUT_DIR (required); SLAB_DZ (integer,
# default 500); CHUNK and BIN (default 500,500,500 and 125,125,125); ZVF (the
# zvf executable, default: zvf on PATH).
set -euo pipefail
: "${OUTPUT:?set OUTPUT to the store path}"
: "${INPUT_DIR:?set INPUT_DIR to the directory of the slab files}"
i=${SLURM_ARRAY_TASK_ID:?not a Slurm array task}
dz=${SLAB_DZ:-500}

slab="$INPUT_DIR/slab_$i"
if [ -f "$slab.npy" ]; then
    input=(--input "$slab.npy" --attr-input "intensity=${slab}_intensity.npy")
elif [ -f "$slab.csv" ]; then
    input=(--input "$slab.csv")
elif [ -f "$slab.ply" ]; then
    input=(--input "$slab.ply")
else
    echo "no input for slab $i: expected $slab.npy, .csv or .ply" >&2
    exit 4
fi

# Every partition must agree on dtypes: pin them (CSV values parse as float64).
"${ZVF:-zvf}" write-partition "$OUTPUT" "${input[@]}" \
    --positions-dtype float32 --attr-dtype intensity=float32 \
    --chunk-shape "${CHUNK:-500,500,500}" --bin-shape "${BIN:-125,125,125}" \
    --z-range "$((i * dz)),$(((i + 1) * dz))" \
    --threads "${SLURM_CPUS_PER_TASK:-0}"
