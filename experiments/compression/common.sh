# Sourced by the compression experiments with their arguments
# (`source "$(dirname "$0")/../common.sh" "$@"`): sets `root`, `config` (the
# CONFIG environment variable, default configs/fmnist_full.yaml: any family's
# full recipe, e.g. CONFIG=configs/resnet_fmnist_full.yaml), `out` (OUT_DIR,
# the first argument, default runs/compression/<config name>/<the script's
# folder>) and `sets` (the arguments after it), checks that the config's
# output.dir holds a checkpoint, creates OUT_DIR, and defines
#   compress_row NAME ARGS...   qnas compress on the largest subnet with ARGS
#                               and the run's --set overrides, into
#                               OUT_DIR/NAME.json (--json) and NAME.txt.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
config="${CONFIG:-$root/configs/fmnist_full.yaml}"
name="$(basename "$config" .yaml)"
out="${1:-$root/runs/compression/$name/$(basename "$(cd "$(dirname "$0")" && pwd)")}"
sets=("${@:2}")
qnas="$root/build/qnas"
run_dir="$("$qnas" config "$config" "${sets[@]}" | awk '/^output:/ {o = 1} o && /^  dir:/ {print $2; exit}')"
[[ -f "$run_dir/supernet.pt" ]] || { echo "$0: no $run_dir/supernet.pt; train $config first (qnas train)" >&2; exit 1; }
mkdir -p "$out"
compress_row() {
  local name="$1"; shift
  echo "== $name" >&2
  "$qnas" compress "$config" --subnet largest "$@" "${sets[@]}" --json "$out/$name.json" > "$out/$name.txt"
}
