#!/usr/bin/env bash
# Quantization-aware CP factorization (REFERENCES.md §5) on the largest
# fmnist_full subnet: test top-1 against BOPs (% of the fp32 model's
# MACs * 32 * 32) for ADMM-CP (admm_cp), CP-then-quantize (cp_rtn: CP-ALS,
# then the factors rounded) and plain low-bit PTQ (RTN and GPTQ, uniform
# W/A8). Factorized runs keep the stem and the classifier at 8-bit weights
# (qnas compress --keep-8bit, as the paper keeps the first conv and the
# classifier); depthwise layers keep round-to-nearest at the factors' bits.
# Needs the fmnist_full checkpoint (experiments/training/README.md, "mbv3 full recipe"; CONFIG= another family's).
#
#   experiments/compression/factorization/run.sh [OUT_DIR] [--set KEY=VALUE ...]   (~15 min on 2 cores)
# Writes OUT_DIR/<row>.json (qnas compress --json) and OUT_DIR/table.md, curve.png, curve.pdf.
set -euo pipefail
source "$(dirname "$0")/../common.sh" "$@"
run() {  # resumable: a finished row is kept
  [[ -f "$out/$1.json" ]] || compress_row "$@"
}
run fp32 --bits 32/32
for w in 2 3 4; do
  run "rtn_w${w}a8" --bits "$w/8"
  run "gptq_w${w}a8" --bits "$w/8" --method gptq
done
for bits_rate in 8:2 8:3 4:1 4:1.5 4:2; do
  w="${bits_rate%%:*}"; rate="${bits_rate##*:}"
  for method in admm_cp cp_rtn; do
    run "${method}_w${w}a8_r${rate}" --bits "$w/8" --method "$method" --rank-rate "$rate"
  done
done
/usr/bin/python3 "$root/experiments/compression/factorization/analyze.py" "$out"
