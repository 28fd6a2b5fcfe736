#!/usr/bin/env bash
# End-to-end check of the zvf tool as a Slurm job script uses it: partitions from
# CSV and PLY, finalise, info, query, and the documented exit codes.
# Usage: cli_smoke.sh /path/to/zvf        (bash and awk only, no Python)
set -u
ZVF=${1:?usage: cli_smoke.sh /path/to/zvf}
[ -x "$ZVF" ] || { echo "cli_smoke: not an executable: $ZVF" >&2; exit 1; }
ZVF=$(cd "$(dirname "$ZVF")" && pwd)/$(basename "$ZVF")  # the checks run in a scratch directory
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zvf_cli_smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
FAILED=0

fail() { echo "FAIL: $*" >&2; FAILED=1; }

# expect CODE CMD...: runs CMD, checks its exit code, keeps stdout/stderr in out.txt/err.txt.
expect() {
  local want=$1; shift
  "$@" >out.txt 2>err.txt
  local got=$?
  if [ "$got" != "$want" ]; then
    fail "exit $got (expected $want): $*"
    sed 's/^/  stdout: /' out.txt >&2
    sed 's/^/  stderr: /' err.txt >&2
  fi
}
contains() { grep -q -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"; }

# Two z-slabs of 60 points on a deterministic lattice, with a float and an int attribute.
for s in 0 1; do
  awk -v s="$s" 'BEGIN {
    print "x,y,z,intensity,label"
    for (i = 0; i < 60; i++) printf "%d.5,%d.25,%d,%g,%d\n", (i * 37) % 1000, (i * 53) % 1000, s * 500 + (i * 7) % 500, i / 8, i % 5
  }' >"slab_$s.csv"
done

expect 0 "$ZVF" --version
contains out.txt "zvf "
expect 0 "$ZVF" --help
contains out.txt "Exit codes"
expect 0 "$ZVF" write-partition --help
contains out.txt "SLURM_ARRAY_TASK_ID"

# --- partitions, info before and after finalise
expect 0 "$ZVF" write-partition s.zv --input slab_0.csv --chunk-shape 250,250,250 --bin-shape 125,125,125 --z-range 0,500
contains out.txt "60 vertices"
expect 0 "$ZVF" info s.zv
contains out.txt "not finalised"
contains out.txt "z_0_500"
expect 0 "$ZVF" write-partition s.zv --input slab_1.csv --chunk-shape 250,250,250 --bin-shape 125,125,125 \
  --z-range 500,inf --threads 2
expect 0 "$ZVF" info s.zv --json
contains out.txt '"finalised": false'
expect 0 "$ZVF" finalise s.zv
contains out.txt "merged 2 partitions, 120 vertices"
expect 0 "$ZVF" finalize s.zv
contains out.txt "already final, nothing to do"
expect 0 "$ZVF" info s.zv
contains out.txt "120 vertices"
contains out.txt "intensity"
expect 0 "$ZVF" info s.zv --json
contains out.txt '"finalised": true'
contains out.txt '"vertex_count": 120'

# --- queries: the CSV holds exactly the points inside the box
expect 0 "$ZVF" query s.zv --bbox 0,0,0:500,500,250 --output roi.csv
want=$(cat slab_0.csv slab_1.csv | awk -F, '$1 != "x" && $1 <= 500 && $2 <= 500 && $3 <= 250' | wc -l)
got=$(($(wc -l <roi.csv) - 1))
[ "$got" = "$want" ] || fail "query returned $got points, expected $want"
[ "$(head -1 roi.csv)" = "x,y,z,intensity,label" ] || fail "roi.csv header: $(head -1 roi.csv)"
expect 0 "$ZVF" query s.zv --bbox=-inf,-inf,-inf:inf,inf,inf --attrs label --output all.npy
[ -f all.npy ] && [ -f all.label.npy ] && [ ! -f all.intensity.npy ] || fail "query .npy files: $(ls)"

# --- one-shot write from PLY
{
  printf 'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty uchar red\nend_header\n'
  printf '0 0 10\n1 2 20\n3 4 30\n'
} >pts.ply
expect 0 "$ZVF" write p.zv --input pts.ply --chunk-shape 10,10
contains out.txt "wrote 3 vertices"

# --- exit codes
expect 2 "$ZVF" write-partition t.zv --input slab_0.csv --chunk-shape abc --z-range 0,500
contains err.txt "zvf: error: --chunk-shape: expected 2 to 4 comma-separated positive numbers, got 'abc'"
expect 2 "$ZVF" write-partition t.zv --input slab_0.csv --chunk-shape 250,250,250
expect 2 "$ZVF" no-such-command
expect 2 "$ZVF" query s.zv --output out.txt
expect 3 "$ZVF" write-partition t.zv --input slab_0.csv --chunk-shape 250,250,250 --z-range 0,100
printf 'x,y,z\n1,2,oops\n' >bad.csv
expect 3 "$ZVF" write t.zv --input bad.csv --chunk-shape 10,10,10
contains err.txt "bad.csv:2"
expect 4 "$ZVF" write t.zv --input missing.csv --chunk-shape 10,10,10
expect 4 "$ZVF" info missing.zv
expect 4 "$ZVF" query s.zv --level 7 --output x.csv
expect 6 "$ZVF" write s.zv --input slab_0.csv --chunk-shape 250,250,250
# partitions must agree on the layout and must not overlap
expect 0 "$ZVF" write-partition o.zv --input slab_0.csv --chunk-shape 250,250,250 --z-range 0,500 --compressor zstd
expect 6 "$ZVF" write-partition o.zv --input slab_1.csv --chunk-shape 250,250,250 --z-range 500,1000
contains err.txt "zvf: error: "
expect 6 "$ZVF" write-partition o.zv --input slab_1.csv --chunk-shape 250,250,250 --z-range 400,1000 --compressor zstd
contains err.txt "overlaps"

# gaps between partitions: refused, then accepted with --allow-gaps (reported on stderr)
awk 'BEGIN { print "x,y,z"; for (i = 0; i < 10; i++) printf "%d,%d,%d\n", i, i, 600 + i }' >high.csv
expect 0 "$ZVF" write-partition g.zv --input slab_0.csv --attr-columns '' --chunk-shape 250,250,250 --z-range 0,500
expect 0 "$ZVF" write-partition g.zv --input high.csv --chunk-shape 250,250,250 --z-range 600,1000
expect 6 "$ZVF" finalise g.zv
expect 0 "$ZVF" finalise g.zv --allow-gaps
contains err.txt "warning: gap"
contains out.txt "70 vertices"

# an empty slab and a full one agree once the CSV attribute dtypes are pinned
printf 'x,y,z,intensity,label\n' >empty.csv
expect 0 "$ZVF" write-partition e.zv --input empty.csv --chunk-shape 250,250,250 --z-range 0,500 \
  --attr-dtype '*=float32' --attr-dtype label=uint8
expect 0 "$ZVF" write-partition e.zv --input slab_1.csv --chunk-shape 250,250,250 --z-range 500,1000 \
  --attr-dtype intensity=float32 --attr-dtype label=uint8
expect 0 "$ZVF" finalise e.zv
expect 0 "$ZVF" info e.zv --json
contains out.txt '"dtype": "uint8"'
expect 3 "$ZVF" write-partition e2.zv --input slab_1.csv --chunk-shape 250,250,250 --z-range 500,1000 \
  --attr-dtype intensity=int8

if [ "$FAILED" = 0 ]; then echo "cli_smoke: all checks passed"; fi
exit "$FAILED"
