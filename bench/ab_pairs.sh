#!/bin/bash
# A/B benchmark driver: one bench script run against two commits, alternated in pairs (A B A B ...) so that
# drift on a shared machine (other people's tests, CPU frequency) falls on both sides alike.
#
#   bench/ab_pairs.sh OLD_COMMIT NEW_COMMIT NAME PAIRS -- bench/SCRIPT.py [its options]
#
# Each commit is exported once (git archive) to /tmp/bench-ab-<commit>; each run is that tree's own copy of the
# script (the bench scripts put their tree's src/ first on sys.path, and so do the servers they start), with
# PYTHONPATH=<tree>/src, and the tree imported is checked (alertscaler.__file__, first line of each .out).
# Results in /tmp/bench-ab/NAME/: old-N.json / new-N.json (the script's --json), .out / .err (stdout, stderr
# with /usr/bin/time -v: max RSS), and log: start/end time, exit code, wall time and the load average of
# every run. FIRST=K starts the pair numbering at K (to add pairs to an earlier series).
# Used for "Restructure of 2026-12-07 (issue 18): before vs after" in BENCHMARKS.md.
set -u
if [ $# -lt 6 ] || [ "$5" != "--" ]; then
  echo "usage: $0 OLD_COMMIT NEW_COMMIT NAME PAIRS -- bench/SCRIPT.py [options]" >&2
  exit 2
fi
old=$1 new=$2 name=$3 pairs=$4
shift 5
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
py=${PYTHON:-$repo/.venv/bin/python}
out=/tmp/bench-ab/$name
mkdir -p "$out"
declare -A tree
for side in old new; do
  commit=$(git -C "$repo" rev-parse --short=12 "${!side}")
  tree[$side]=/tmp/bench-ab-$commit
  if [ ! -d "${tree[$side]}" ]; then
    mkdir -p "${tree[$side]}"
    git -C "$repo" archive "$commit" | tar -x -C "${tree[$side]}"
  fi
  echo "$side = $commit (${tree[$side]})" >> "$out/log"
done
first=${FIRST:-1}
for i in $(seq "$first" $((first + pairs - 1))); do
  for side in old new; do
    tag=$side-$i
    dir=${tree[$side]}
    echo "$tag start $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/log"
    start=$(date +%s.%N)
    (cd "$dir" && PYTHONPATH="$dir/src" "$py" -c "import alertscaler; print('IMPORT', alertscaler.__file__)" &&
      PYTHONPATH="$dir/src" /usr/bin/time -v "$py" "$@" --json "$out/$tag.json") > "$out/$tag.out" 2> "$out/$tag.err"
    rc=$?
    end=$(date +%s.%N)
    echo "$tag end $(date +%T) rc $rc wall $(echo "$end - $start" | bc) load $(cut -d' ' -f1-3 /proc/loadavg)" \
      >> "$out/log"
  done
done
