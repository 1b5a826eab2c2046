#!/usr/bin/env bash
# What a precision change between neighbours costs on the int8 runtime: the
# largest subnet all-int8, all-fp32, and all-int8 with fp32 islands of one
# layer, one block, one stage and every other layer, timed side by side in one
# run (bench_int8_latency; batch 1 and the throughput batch, 1 thread).
#
#   experiments/simqnas/transitions.sh [CONFIG] [--set k=v ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
config="${1:-$root/configs/quickstart.yaml}"
shift || true
out="${OUT_DIR:-$root/runs/simqnas/transitions}"
mkdir -p "$out"
"$root/build/qnas" info "$config" "$@" --format json > "$out/space.json"
mapfile -t specs < <(python3 "$root/experiments/simqnas/transitions.py" "$out/space.json" "$out/specs")
"$root/build/bench/bench_int8_latency" "$config" "$@" --bits 32 8/8 --spec "${specs[@]}" --no-ort --runs 200 \
  --format md | tee "$out/table.md"
