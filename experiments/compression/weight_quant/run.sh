#!/usr/bin/env bash
# Weight quantization methods on the largest fmnist_full subnet (test top-1):
# fp32, W4 (RTN, GPTQ; per channel), W2 (RTN, GPTQ, decoupleQ stage one, and
# with its second stage; per channel, asymmetric grids: 4 levels, as GPTQ's
# reference default and decoupleQ use),
# W8A8 RTN and SmoothQuant (alpha 0.5, 0.75, 1). Every layer gets the method;
# activations stay fp32 below W8A8.
# Needs the fmnist_full checkpoint (experiments/training/README.md, "mbv3 full recipe"; CONFIG= another family's).
#
#   experiments/compression/weight_quant/run.sh [OUT_DIR] [--set quant.KEY=VALUE ...]   (~6 min on 2 cores)
# Writes OUT_DIR/<row>.json (qnas compress --json) and OUT_DIR/table.md.
set -euo pipefail
source "$(dirname "$0")/../common.sh" "$@"
compress_row fp32 --bits 32
compress_row w4_rtn --bits 4 --method rtn
compress_row w4_gptq --bits 4 --method gptq
compress_row w2_rtn --bits 2 --method rtn --asymmetric
compress_row w2_gptq --bits 2 --method gptq --asymmetric
compress_row w2_gptq_act_order --bits 2 --method gptq --asymmetric --act-order
compress_row w2_decoupleq --bits 2 --method decoupleq --tune-steps 0
compress_row w2_decoupleq_tuned --bits 2 --method decoupleq
compress_row w8a8_rtn --bits 8/8 --method rtn
for alpha in 0.5 0.75 1; do compress_row "w8a8_smoothquant_a$alpha" --bits 8/8 --method smoothquant --alpha "$alpha"; done
/usr/bin/python3 "$root/experiments/compression/weight_quant/analyze.py" "$out"
