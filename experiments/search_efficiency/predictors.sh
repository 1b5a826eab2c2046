#!/usr/bin/env bash
# Predictor quality on 250 validated rows and the label noise that bounds it.
# Re-measures the random seed-0 rows of run.sh (the random tactic's genomes do
# not depend on the measurements, so they are the same 250 subnets) with top1
# on the whole validation split (10,000 images instead of 5,000) and a second
# latency measurement, then fits every predictor with `qnas predict`.
#
#   experiments/search_efficiency/run.sh          (first: the rows to study)
#   experiments/search_efficiency/predictors.sh [OUT_DIR]   (~6 min on 2 cores)
# Writes OUT_DIR/predictors.md (default runs/search_efficiency).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/runs/search_efficiency}"
[[ -f "$out/random_s0/evaluations.csv" ]] || { echo "predictors.sh: no $out/random_s0; run run.sh first" >&2; exit 1; }
source "$root/experiments/search_efficiency/common.sh"
echo "== random seed 0, top1 on 10,000 validation images -> $out/random_s0_val10k" >&2
resumable_search "$out/random_s0_val10k" --set search.tactic=random --set search.seed=0 \
  --set search.evaluations=250 --set search.val_images=0
/usr/bin/python3 "$root/experiments/search_efficiency/predictors.py" "$out" "$root/build/qnas"
