#!/usr/bin/env bash
# Data-parallel training on this host: one process with T threads against
# T processes with one thread each (mpirun; gradients all-reduced through
# c10d/Gloo), run alternately ROUNDS times, one epoch of IMAGES training
# images each (no validation). Prints each run's epoch throughput from
# train_log.csv and the ratio of the medians.
#
#   experiments/scale/train_throughput.sh [ROUNDS=3] [IMAGES=20000] [CONFIG=configs/quickstart.yaml]
#   EXTRA="--set train.sync_bn=true" experiments/scale/train_throughput.sh   # more --set flags for both
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
IMAGES=${2:-20000}
CONFIG=${3:-configs/quickstart.yaml}
QNAS=${QNAS:-build/qnas}
T=$(nproc)
MPIRUN=(mpirun --bind-to none -np "$T")
[[ $(id -u) == 0 ]] && MPIRUN+=(--allow-run-as-root)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
sets=(--set train.epochs=1 --set "data.train_subset=$IMAGES" --set data.val_size=0 --set train.eval_every=0 ${EXTRA:-})

epoch_rate() { tail -1 "$1/train_log.csv" | cut -d, -f5; }

echo "| round | 1 process x $T threads (img/s) | $T processes x 1 thread (img/s) |"
echo "|---|---|---|"
one=(); many=()
for r in $(seq 1 "$ROUNDS"); do
  "$QNAS" train "$CONFIG" "${sets[@]}" --set "threads=$T" --set "output.dir=$OUT/one$r" > /dev/null 2>&1
  "${MPIRUN[@]}" "$QNAS" train "$CONFIG" "${sets[@]}" --set threads=1 --set "output.dir=$OUT/many$r" > /dev/null 2>&1
  one+=("$(epoch_rate "$OUT/one$r")"); many+=("$(epoch_rate "$OUT/many$r")")
  echo "| $r | ${one[-1]} | ${many[-1]} |"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m1=$(median "${one[@]}"); mn=$(median "${many[@]}")
echo
echo "median: $m1 vs $mn img/s; $T processes / 1 process = $(awk -v a="$mn" -v b="$m1" 'BEGIN {printf "%.3f", a / b}')"
