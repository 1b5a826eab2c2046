#!/usr/bin/env bash
# Sample efficiency of the search tactics on the quickstart supernet:
# linas, nsga2, random and linas_est (below), 3 seeds each, 250 validated candidates, 3
# objectives (top1 on 5,000 validation images, latency_ms on int8 kernels,
# model_bytes). Needs the quickstart checkpoint (README command 1).
#
#   experiments/search_efficiency/run.sh [OUT_DIR]   (~1 h on 2 cores; TACTICS="linas nsga2" for a subset)
#   /usr/bin/python3 experiments/search_efficiency/analyze.py [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/runs/search_efficiency}"
ckpt="$root/runs/quickstart/supernet.pt"
[[ -f "$ckpt" ]] || { echo "run.sh: no $ckpt; run README command 1 (qnas search configs/quickstart.yaml) first" >&2; exit 1; }
evaluations="${EVALUATIONS:-250}"
source "$root/experiments/search_efficiency/common.sh"
# linas: the paper's LINAS (the whole inner final population validated per
# iteration, search.linas_batch: 0, whatever the quickstart sets); linas_est:
# that with the latency model's estimate as a proxy feature of its predictors
# (search.proxy_features: [latency_est_ms]); linas_b10: LINAS validating 10
# candidates per iteration after the first, picked by predicted hypervolume
# gain (search.linas_batch: 10, the quickstart's setting); linas_b10_est: both;
# linas_b10_est_i20: that starting from 20 validated genomes instead of 50
# (search.linas_initial: 20; NSGA-II keeps its population of 50).
tactics="${TACTICS:-linas nsga2 random linas_est linas_b10}"
for seed in 0 1 2; do
  for variant in $tactics; do
    extra=()
    tactic="$variant"
    # A LINAS variant's name lists its settings: linas[_b10][_est][_i20].
    if [[ "$variant" =~ ^linas(_b10)?(_est)?(_i20)?$ ]]; then
      tactic=linas
      extra=(--set "search.linas_batch=$([[ -n "${BASH_REMATCH[1]}" ]] && echo 10 || echo 0)")
      [[ -n "${BASH_REMATCH[2]}" ]] && extra+=(--set "search.proxy_features=[latency_est_ms]")
      [[ -n "${BASH_REMATCH[3]}" ]] && extra+=(--set search.linas_initial=20)
    fi
    echo "== $variant seed $seed -> $out/${variant}_s${seed}" >&2
    resumable_search "$out/${variant}_s${seed}" --set "search.tactic=$tactic" --set "search.seed=$seed" \
      --set "search.evaluations=$evaluations" "${extra[@]}"
  done
done
