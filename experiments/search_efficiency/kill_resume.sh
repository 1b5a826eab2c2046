#!/usr/bin/env bash
# Exact resume of a real search: one uninterrupted run and one killed with
# SIGKILL once KILL_AT candidates are validated, then resumed; the two
# evaluations.csv are compared row by row (experiments/search_efficiency/README.md).
#   experiments/search_efficiency/kill_resume.sh CONFIG CHECKPOINT_DIR OUT [KILL_AT] [--set k=v ...]
# CHECKPOINT_DIR holds the trained supernet.pt. Measured latency differs from
# run to run, and a predictor fitted on it proposes other candidates, so the
# runs search on latency_est_ms (the latency model: one table, measured by
# the first run and copied to the second) unless the --set arguments say
# otherwise; the comparison skips the columns that time something.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
qnas="$root/build/qnas"
[[ $# -ge 3 ]] || { echo "usage: $0 CONFIG CHECKPOINT_DIR OUT [KILL_AT] [--set k=v ...]" >&2; exit 2; }
config="$1" ckpt="$(realpath "$2")/supernet.pt" out="$3"
shift 3
kill_at=100
if [[ $# -gt 0 && "$1" != --* ]]; then kill_at="$1"; shift; fi
sets=(--set "search.objectives={top1: max, latency_est_ms: min, model_bytes: min}" "$@")
[[ -f "$ckpt" ]] || { echo "$0: no checkpoint $ckpt" >&2; exit 2; }

search_args() {  # search_args DIR [--resume]: sets args, qnas's arguments for a search into DIR
  local dir="$1"; shift
  args=(search "$config" "$@" --set "output.dir=$dir" "${sets[@]}")
}

search() {  # search DIR [--resume]: stdout to DIR/front.txt, progress appended to DIR/search.log
  search_args "$@"
  "$qnas" "${args[@]}" >> "$1/front.txt" 2>> "$1/search.log"
}

rows() { [[ -f "$1/evaluations.csv" ]] && echo $(($(wc -l < "$1/evaluations.csv") - 1)) || echo 0; }

mkdir -p "$out/whole" "$out/killed"
for dir in "$out/whole" "$out/killed"; do ln -sf "$ckpt" "$dir/supernet.pt"; done

if [[ ! -f "$out/whole/search.done" ]]; then
  echo "== uninterrupted search -> $out/whole" >&2
  start=$(date +%s)
  search "$out/whole"
  echo "$(( $(date +%s) - start ))" > "$out/whole/search.done"
fi
for shared in latency_reference.json latency_table.json; do
  [[ -f "$out/whole/$shared" ]] && cp "$out/whole/$shared" "$out/killed/$shared"
done

if [[ ! -f "$out/killed/search.done" ]]; then
  echo "== search killed with SIGKILL after $kill_at candidates -> $out/killed" >&2
  search_args "$out/killed"
  # A simple command sent to the background: $! is qnas itself, not a
  # subshell around it (killing a subshell would leave qnas running).
  "$qnas" "${args[@]}" >> "$out/killed/front.txt" 2>> "$out/killed/search.log" &
  pid=$!
  while kill -0 "$pid" 2> /dev/null && (( $(rows "$out/killed") < kill_at )); do sleep 0.2; done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  echo "killed at $(rows "$out/killed") validated candidates" | tee "$out/killed/kill.txt" >&2
  echo "== resumed -> $out/killed" >&2
  search "$out/killed" --resume
  touch "$out/killed/search.done"
fi
/usr/bin/python3 "$root/experiments/search_efficiency/kill_resume.py" "$out/whole" "$out/killed"
