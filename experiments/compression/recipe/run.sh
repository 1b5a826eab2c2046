#!/usr/bin/env bash
# Int8 recipe search (REFERENCES.md §2) on the largest quickstart subnet:
# every recipe of the grid deployed and measured (validation top-1 on the
# first 2,000 images, latency on the int8 runtime at the config's latency
# settings, model_bytes); the fastest within 1 point of fp32 wins. Needs
# the quickstart checkpoint (README command 1). The full default grid
# (3 observers, 5 alphas: 40 recipes) takes ~15 min; this one ~5 min.
#
#   experiments/compression/recipe/run.sh [OUT_DIR] [extra qnas recipe arguments]
# Writes OUT_DIR/recipe.json and OUT_DIR/table.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${1:-$root/runs/compression/recipe}"
shift || true
[[ -f "$root/runs/quickstart/supernet.pt" ]] || { echo "run.sh: no runs/quickstart/supernet.pt; run README command 1 first" >&2; exit 1; }
mkdir -p "$out"
"$root/build/qnas" recipe "$root/configs/quickstart.yaml" --subnet largest --images 2000 --max-top1-drop 1 \
  --observers minmax,mse --alphas none,0,0.5 "$@" --json "$out/recipe.json" --format md > "$out/table.md"
cat "$out/table.md"
