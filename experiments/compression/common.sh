# Sourced by the fmnist_full compression experiments with their arguments
# (`source "$(dirname "$0")/../common.sh" "$@"`): sets `root`, `out` (OUT_DIR,
# the first argument, default runs/compression/<the script's folder>) and
# `sets` (the arguments after it), checks the checkpoint, creates OUT_DIR,
# and defines
#   compress_row NAME ARGS...   qnas compress on the largest subnet with ARGS
#                               and the run's --set overrides, into
#                               OUT_DIR/NAME.json (--json) and NAME.txt.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/runs/compression/$(basename "$(cd "$(dirname "$0")" && pwd)")}"
sets=("${@:2}")
config="$root/configs/fmnist_full.yaml"
qnas="$root/build/qnas"
[[ -f "$root/runs/fmnist_full/supernet.pt" ]] || { echo "$0: no runs/fmnist_full/supernet.pt; train configs/fmnist_full.yaml first" >&2; exit 1; }
mkdir -p "$out"
compress_row() {
  local name="$1"; shift
  echo "== $name" >&2
  "$qnas" compress "$config" --subnet largest "$@" "${sets[@]}" --json "$out/$name.json" > "$out/$name.txt"
}
