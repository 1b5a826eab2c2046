#!/usr/bin/env bash
# Sample efficiency of the search tactics on the quickstart supernet:
# linas, nsga2 and random, 3 seeds each, 250 validated candidates, 3
# objectives (top1 on 5,000 validation images, latency_ms on int8 kernels,
# model_bytes). Needs the quickstart checkpoint (README command 1).
#
#   experiments/search_efficiency/run.sh [OUT_DIR]   (~45 min on 2 cores)
#   /usr/bin/python3 experiments/search_efficiency/analyze.py [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/runs/search_efficiency}"
ckpt="$root/runs/quickstart/supernet.pt"
[[ -f "$ckpt" ]] || { echo "run.sh: no $ckpt; run README command 1 (qnas search configs/quickstart.yaml) first" >&2; exit 1; }
evaluations="${EVALUATIONS:-250}"
source "$root/experiments/search_efficiency/common.sh"
for seed in 0 1 2; do
  for tactic in linas nsga2 random; do
    echo "== $tactic seed $seed -> $out/${tactic}_s${seed}" >&2
    resumable_search "$out/${tactic}_s${seed}" --set "search.tactic=$tactic" --set "search.seed=$seed" \
      --set "search.evaluations=$evaluations"
  done
done
