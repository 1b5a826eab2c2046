#!/usr/bin/env bash
# Accuracy of data-parallel training, over seeds: the full quickstart trained
# as one process x T threads and as T processes x 1 thread (mpirun) for each
# seed, then the test top-1 of the largest and smallest subnets. Trained
# folders (OUT/seedS_{one,dp}, with a supernet.pt) are kept and skipped on a
# rerun, so seeds can be added later. Prints each seed's figures and the
# mean difference with its standard error.
#
#   experiments/scale/train_accuracy.sh [SEEDS="0 1 2"] [OUT=runs/scale_accuracy]
#   EXTRA="--set train.sync_bn=true" ...   # more --set flags for the processes' runs
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${1:-0 1 2}
OUT=${2:-runs/scale_accuracy}
CONFIG=${CONFIG:-configs/quickstart.yaml}
QNAS=${QNAS:-build/qnas}
T=$(nproc)
MPIRUN=(mpirun --bind-to none -np "$T")
[[ $(id -u) == 0 ]] && MPIRUN+=(--allow-run-as-root)
mkdir -p "$OUT"

train() {  # DIR SEED one|dp
  [[ -f $1/supernet.pt ]] && return
  rm -rf "$1"
  if [[ $3 == one ]]; then "$QNAS" train "$CONFIG" --set "seed=$2" --set "threads=$T" --set "output.dir=$1"
  else "${MPIRUN[@]}" "$QNAS" train "$CONFIG" --set "seed=$2" --set threads=1 ${EXTRA:-} --set "output.dir=$1"; fi \
    > "$1.log" 2>&1
}
top1() {  # DIR SEED SUBNET
  "$QNAS" eval "$CONFIG" --set "seed=$2" --set "output.dir=$1" --subnet "$3" --split test --no-latency --format csv \
    2>/dev/null | awk -F, 'NR == 1 {for (i = 1; i <= NF; ++i) if ($i == "top1") k = i} NR == 2 {print $k}'
}

echo "| seed | subnet | 1 x $T threads | $T x 1 thread | difference |"
echo "|---|---|---|---|---|"
diffs_l=(); diffs_s=()
for s in $SEEDS; do
  train "$OUT/seed${s}_one" "$s" one
  train "$OUT/seed${s}_dp" "$s" dp
  for sub in largest smallest; do
    a=$(top1 "$OUT/seed${s}_one" "$s" "$sub"); b=$(top1 "$OUT/seed${s}_dp" "$s" "$sub")
    d=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%+.2f", b - a}')
    echo "| $s | $sub | $a | $b | $d |"
    if [[ $sub == largest ]]; then diffs_l+=("$d"); else diffs_s+=("$d"); fi
  done
done
stats() { printf '%s\n' "$@" | awk '{x[NR] = $1; m += $1} END {m /= NR; for (i = 1; i <= NR; ++i) v += (x[i] - m) ^ 2;
  se = NR > 1 ? sqrt(v / (NR - 1) / NR) : 0; printf "%+.2f ± %.2f (standard error, %d seeds)", m, se, NR}'; }
echo
echo "mean difference, largest: $(stats "${diffs_l[@]}"); smallest: $(stats "${diffs_s[@]}")"
