#!/usr/bin/env bash
# Distributed validation on this host: the same search (quickstart space,
# trained checkpoint copied from RUN) as one process x 1 thread, then as a
# coordinator + 1 worker and a coordinator + 2 workers (torchrun, 1 thread
# each), EVALS candidates each. Prints each run's wall time, candidates per
# second and the coordinator's share of the wall time, from the runs'
# summaries; the runs stay in OUT for simulate.py.
#
#   experiments/scale/search_throughput.sh [EVALS=60] [POP=20] [RUN=runs/quickstart_new] [OUT=runs/scale_search]
set -euo pipefail
cd "$(dirname "$0")/../.."
EVALS=${1:-60}
POP=${2:-20}
RUN=${3:-runs/quickstart_new}
OUT=${4:-runs/scale_search}
CONFIG=${CONFIG:-configs/quickstart.yaml}
QNAS=${QNAS:-build/qnas}
TORCHRUN=${TORCHRUN:-scripts/torchrun}
[[ -f $RUN/supernet.pt ]] || { echo "no $RUN/supernet.pt: run README command 1 (qnas search configs/quickstart.yaml) first" >&2; exit 1; }
sets=(--set threads=1 --set "search.evaluations=$EVALS" --set "search.population=$POP")

# run NAME PROCESSES: a fresh folder with the checkpoint, then the search.
run() {
  local dir=$OUT/$1 n=$2
  rm -rf "$dir" && mkdir -p "$dir" && cp "$RUN/supernet.pt" "$dir/"
  local cmd=("$QNAS" search "$CONFIG" "${sets[@]}" --set "output.dir=$dir")
  local start=$(date +%s.%N)
  if [[ $n == 1 ]]; then "${cmd[@]}" > "$dir/stdout.txt" 2> "$dir/stderr.txt"
  else "$TORCHRUN" --nproc_per_node "$n" --no_python "${cmd[@]}" > "$dir/stdout.txt" 2> "$dir/stderr.txt"; fi
  local end=$(date +%s.%N)
  local overhead=$(grep -o 'search overhead [0-9.]*%' "$dir/stdout.txt" | grep -o '[0-9.]*')
  local loop=$(search_loop_s "$dir")
  awk -v n="$1" -v p="$n" -v s="$start" -v e="$end" -v l="$loop" -v c="$EVALS" -v o="$overhead" \
    'BEGIN {printf "| %s | %d | %.1f | %.1f | %.3f | %s%% |\n", n, p, e - s, l, c / l, o}'
}
# The search loop's wall time: hypervolume.csv's wall_s summed over iterations.
search_loop_s() { awk -F, 'NR > 1 {s += $10} END {printf "%.3f", s}' "$1/hypervolume.csv"; }

echo "| run | processes | launch to exit (s) | search loop (s) | candidates/s (loop) | coordinator overhead |"
echo "|---|---|---|---|---|---|"
run one 1
run workers1 2
run workers2 3
rate() { awk -v c="$EVALS" -v l="$(search_loop_s "$OUT/$1")" 'BEGIN {printf "%.4f", c / l}'; }
echo
echo "2 workers / 1 process: $(awk -v a="$(rate workers2)" -v b="$(rate one)" 'BEGIN {printf "%.2f", a / b}')x;" \
     "1 worker / 1 process: $(awk -v a="$(rate workers1)" -v b="$(rate one)" 'BEGIN {printf "%.2f", a / b}')x"
