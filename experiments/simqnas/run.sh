#!/usr/bin/env bash
# SimQ-NAS's headline measured on a qnas supernet: two policy spaces, each
# searched by LINAS (3 objectives: top1, latency_ms, model_bytes) on a plain
# and on a quantization-aware supernet, every front member re-scored on the
# test split against the all-INT8 and the fp32 largest subnets.
#
#   (a) simqnas: SimQ-NAS's own space, each layer INT8 or FP32 (weights and
#       activations together: quant.weight_bits [8, 32], couple_act_bits,
#       one gene per layer, rtn)
#   (b) qnas:    the config's own space (its weight_bits, act_bits,
#       granularity and methods), unchanged
#
#   experiments/simqnas/run.sh CONFIG [OUT_DIR] [--set k=v ...]   (resumable)
#   /usr/bin/python3 experiments/simqnas/analyze.py OUT_DIR
#
# The two supernets are trained into OUT_DIR/supernet_fp32 and
# OUT_DIR/supernet_qat (train.quant_aware false / true, the config's policy
# choices for the quantization-aware one) unless FP32_CKPT / QAT_CKPT name
# existing checkpoints of the same config to reuse. QAT_FINETUNE_EPOCHS=N
# trains the quantization-aware supernet as a fine-tune of the fp32 one
# instead of from scratch (train.init_from; N epochs at QAT_FINETUNE_LR,
# default 0.01, cosine without warm-up), as APQ fine-tunes Once-for-All.
# Cost: two trainings of CONFIG, four searches and four front re-scorings
# (quickstart: ~10 + 12 min of training, 4 x ~9 min of search, 4 x ~5 min).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
qnas="$root/build/qnas"
config="$1"; shift
out="$root/runs/simqnas/$(basename "$config" .yaml)"
if [[ $# -gt 0 && "$1" != --set ]]; then out="$1"; shift; fi
sets=("$@")
mkdir -p "$out"

# train_or_link DIR QUANT_AWARE CKPT [--set k=v ...]: DIR/supernet.pt trained
# (resumed) or linked.
train_or_link() {
  local dir="$1" qat="$2" ckpt="$3"
  shift 3
  mkdir -p "$dir"
  if [[ -n "$ckpt" ]]; then
    ln -sf "$(realpath "$ckpt")" "$dir/supernet.pt"
    return
  fi
  [[ -f "$dir/train.done" ]] && return
  local resume=()
  [[ -f "$dir/supernet.pt" ]] && resume=(--resume)
  echo "== train quant_aware=$qat -> $dir" >&2
  "$qnas" train "$config" "${resume[@]}" "${sets[@]}" "$@" --set "output.dir=$dir" --set "train.quant_aware=$qat" \
    >> "$dir/train.txt" 2>> "$dir/train.log"
  touch "$dir/train.done"
}

simqnas_space=(--set "quant.weight_bits=[8, 32]" --set "quant.act_bits=[8, 32]" --set quant.couple_act_bits=true
               --set quant.granularity=layer --set "quant.methods=[rtn]" --set "quant.keep_8bit=[]")
qat_sets=()
[[ -n "${QAT_FINETUNE_EPOCHS:-}" ]] &&
  qat_sets=(--set "train.init_from=$out/supernet_fp32/supernet.pt" --set "train.epochs=$QAT_FINETUNE_EPOCHS"
            --set "train.lr=${QAT_FINETUNE_LR:-0.01}" --set train.warmup_epochs=0)
# Each supernet's searches follow its training, so the plain supernet's rows
# exist before the (slower) quantization-aware training starts.
for supernet in fp32 qat; do
  case "$supernet" in
    fp32) train_or_link "$out/supernet_fp32" false "${FP32_CKPT:-}" ;;
    qat) train_or_link "$out/supernet_qat" true "${QAT_CKPT:-}" "${qat_sets[@]}" ;;
  esac
  for space in simqnas qnas; do
    dir="$out/${space}_${supernet}"
    mkdir -p "$dir"
    ln -sf "$(realpath "$out/supernet_$supernet/supernet.pt")" "$dir/supernet.pt"
    space_sets=()
    [[ "$space" == simqnas ]] && space_sets=("${simqnas_space[@]}")
    run_sets=("${sets[@]}" "${space_sets[@]}" --set "output.dir=$dir" --set search.tactic=linas)
    if [[ ! -f "$dir/search.done" ]]; then
      resume=()
      [[ -f "$dir/state.json" ]] && resume=(--resume)
      echo "== search $space space on the $supernet supernet -> $dir" >&2
      "$qnas" search "$config" "${resume[@]}" "${run_sets[@]}" > "$dir/front.txt" 2> "$dir/search.log"
      touch "$dir/search.done"
    fi
    if [[ ! -f "$dir/front_test.csv" || "$dir/pareto.csv" -nt "$dir/front_test.csv" ]]; then
      echo "== front of $dir on the test split" >&2
      /usr/bin/python3 "$root/experiments/simqnas/front_on_test.py" "$config" "$dir" "$qnas" \
        "${sets[@]}" "${space_sets[@]}" > /dev/null 2> "$dir/front_test.log"
    fi
  done
done
/usr/bin/python3 "$root/experiments/simqnas/analyze.py" "$out"
