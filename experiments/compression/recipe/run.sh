#!/usr/bin/env bash
# Int8 recipe search (REFERENCES.md §2) on the largest subnet of a config:
# every recipe of the grid deployed and measured (validation top-1 on the
# first 2,000 images, latency on the int8 runtime at the config's latency
# settings, model_bytes); the fastest within 1 point of fp32 wins. Needs
# the config's checkpoint (the quickstart's: README command 1). The default grid: static /
# dynamic x per-channel / per-tensor x min/max, percentile, MSE x SmoothQuant
# alpha none, 0, 0.25, 0.5, 0.75 (40 recipes, ~2 min on 2 idle cores).
#
#   [CONFIG=configs/...yaml] [SPLIT=val|test] [IMAGES=N] experiments/compression/recipe/run.sh [OUT_DIR] [extra qnas recipe arguments]
# CONFIG defaults to the quickstart (its checkpoint in its output.dir),
# SPLIT to val, IMAGES to 2000 (0: the whole split). Writes
# OUT_DIR/recipe.json and OUT_DIR/table.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
config="${CONFIG:-$root/configs/quickstart.yaml}"
out="${1:-$root/runs/compression/recipe}"
shift || true
mkdir -p "$out"
"$root/build/qnas" recipe "$config" --subnet largest --split "${SPLIT:-val}" --images "${IMAGES:-2000}" \
  --max-top1-drop 1 "$@" --json "$out/recipe.json" --format md > "$out/table.md"
cat "$out/table.md"
