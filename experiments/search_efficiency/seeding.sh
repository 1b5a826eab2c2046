#!/usr/bin/env bash
# Sensitivity seeding of the initial population on the quickstart supernet:
# LINAS with search.seed_from_sensitivity 0.5 against 0, 3 seeds each, 200
# validated candidates, objectives top1 (5,000 validation images) and
# model_bytes: both deterministic, so the runs repeat exactly. Needs the
# quickstart checkpoint (README command 1).
#
#   experiments/search_efficiency/seeding.sh [OUT_DIR]   (~25 min on 2 cores)
#   /usr/bin/python3 experiments/search_efficiency/seeding.py [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/runs/search_seeding}"
[[ -f "$root/runs/quickstart/supernet.pt" ]] || { echo "seeding.sh: no runs/quickstart/supernet.pt; run README command 1 first" >&2; exit 1; }
evaluations="${EVALUATIONS:-200}"
source "$root/experiments/search_efficiency/common.sh"
for seed in 0 1 2; do
  for fraction in 0 0.5; do
    echo "== linas seed $seed, seed_from_sensitivity $fraction -> $out/seeded${fraction}_s${seed}" >&2
    resumable_search "$out/seeded${fraction}_s${seed}" --set "search.seed=$seed" --set "search.evaluations=$evaluations" \
      --set "search.seed_from_sensitivity=$fraction" --set "search.objectives={top1: max, model_bytes: min}"
  done
done
/usr/bin/python3 "$root/experiments/search_efficiency/seeding.py" "$out"
