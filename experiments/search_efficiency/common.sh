# Sourced by run.sh and predictors.sh: one resumable quickstart search.
#   resumable_search DIR [--set k=v ...]
# runs `qnas search configs/quickstart.yaml` into DIR (sharing the quickstart
# checkpoint), resuming when DIR already holds a state.json; the front goes
# to DIR/front.txt, progress to DIR/search.log.
resumable_search() {
  local dir="$1"; shift
  mkdir -p "$dir"
  ln -sf "$root/runs/quickstart/supernet.pt" "$dir/supernet.pt"
  # One latency anchor (and latency model) for every search, so latency_ms
  # is on one scale across run folders; a folder whose host or latency
  # config differs remeasures them itself.
  local shared
  for shared in latency_reference.json latency_table.json; do
    [[ -f "$root/runs/quickstart/$shared" && ! -f "$dir/$shared" ]] && cp "$root/runs/quickstart/$shared" "$dir/$shared"
  done
  local resume=()
  [[ -f "$dir/state.json" ]] && resume=(--resume)
  "$root/build/qnas" search "$root/configs/quickstart.yaml" "${resume[@]}" --set "output.dir=$dir" "$@" \
    > "$dir/front.txt" 2> "$dir/search.log"
}
