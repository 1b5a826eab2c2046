#!/usr/bin/env bash
# How reproducible latency_ms is, and how well the latency model and the
# latency predictor rank it, with candidates timed against the all-INT8
# largest reference (latency.reference: int8_largest, interleaved rounds)
# and timed alone (none). Each way, the same 250 subnets (the random tactic's
# seed-0 genomes, independent of the measurements) are measured in two
# separate processes; top1 on 500 validation images only (not studied here).
#
#   experiments/search_efficiency/latency_repeat.sh [OUT_DIR]   (~25 min on 2 cores)
# Needs runs/quickstart/supernet.pt (README command 1). Writes
# OUT_DIR/latency_repeat.md (default runs/latency_repeat).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/runs/latency_repeat}"
source "$root/experiments/search_efficiency/common.sh"
for reference in int8_largest none; do
  for repeat in 1 2; do
    dir="$out/${reference}_${repeat}"
    echo "== latency.reference $reference, measurement $repeat -> $dir" >&2
    resumable_search "$dir" --set search.tactic=random --set search.seed=0 --set search.evaluations=250 \
      --set search.val_images=500 --set "search.proxy_features=[latency_est_ms]" --set "latency.reference=$reference"
  done
done
/usr/bin/python3 "$root/experiments/search_efficiency/latency_repeat.py" "$out" "$root/build/qnas"
