#!/usr/bin/env bash
# Local-metric sensitivity (QuantuneV2) on the largest fmnist_full subnet:
#  1. the ranking at 2 bits checked against the measured test top-1 drop of
#     quantizing each layer alone to 2 bits (Spearman; one evaluation per layer);
#  2. mixed precision from it against uniform bits at the same model_bytes
#     (W/A8, round-to-nearest everywhere, test top-1).
# Needs the fmnist_full checkpoint (experiments/training/README.md, "mbv3 full recipe"; CONFIG= another family's).
#
#   experiments/compression/sensitivity/run.sh [OUT_DIR] [--set KEY=VALUE ...]   (~13 min on 2 cores)
# Writes OUT_DIR/check_w2.json, OUT_DIR/<row>.json (qnas compress --json) and OUT_DIR/table.md.
set -euo pipefail
source "$(dirname "$0")/../common.sh" "$@"
echo "== sensitivity check (w2, every layer alone)" >&2
"$qnas" sensitivity "$config" --subnet largest --bits 2 --check "${sets[@]}" --json "$out/check_w2.json" > "$out/check_w2.txt"
bytes_of() { /usr/bin/python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['metrics']['model_bytes']))" "$1"; }
for w in 2 3 4; do
  compress_row "uniform_w${w}a8" --bits "$w/8"
done
# Budgets: each uniform model's bytes, and halfway between w2 and w3.
b2=$(bytes_of "$out/uniform_w2a8.json"); b3=$(bytes_of "$out/uniform_w3a8.json"); b4=$(bytes_of "$out/uniform_w4a8.json")
for budget in $(( (b2 + b3) / 2 )) "$b3" "$b4"; do
  compress_row "mixed_$budget" --method mixed --bits 2,3,4,8/8 --budget-bytes "$budget"
done
/usr/bin/python3 "$root/experiments/compression/sensitivity/analyze.py" "$out"
