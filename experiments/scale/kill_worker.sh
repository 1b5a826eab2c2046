#!/usr/bin/env bash
# Fault check on the quickstart: a coordinator and three workers started as
# separate processes (torchrun's variables set by hand, as a scheduler's job
# steps would: a launcher ends the whole job when one process dies), one
# worker SIGKILLed once AFTER rows are written. Prints what the coordinator
# reported and checks that evaluations.csv holds every candidate once.
#
#   experiments/scale/kill_worker.sh [EVALS=40] [POP=20] [AFTER=10] [RUN=runs/quickstart_new] [OUT=runs/scale_fault]
set -euo pipefail
cd "$(dirname "$0")/../.."
EVALS=${1:-40}
POP=${2:-20}
AFTER=${3:-10}
RUN=${4:-runs/quickstart_new}
OUT=${5:-runs/scale_fault}
QNAS=${QNAS:-build/qnas}
rm -rf "$OUT" && mkdir -p "$OUT" && cp "$RUN/supernet.pt" "$OUT/"
PORT=$((29700 + RANDOM % 200))
pids=()
for r in 0 1 2 3; do
  env RANK=$r WORLD_SIZE=4 LOCAL_RANK=$r LOCAL_WORLD_SIZE=4 MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT \
    "$QNAS" search configs/quickstart.yaml --set threads=1 --set dist.oversubscribe=true \
    --set "search.evaluations=$EVALS" --set "search.population=$POP" --set "output.dir=$OUT" \
    > "$OUT/rank$r.log" 2>&1 &
  pids+=($!)
done
rows() { [[ -f $OUT/evaluations.csv ]] && echo $(( $(wc -l < "$OUT/evaluations.csv") - 1 )) || echo 0; }
while (( $(rows) < AFTER )); do sleep 0.2; done
kill -9 "${pids[2]}"
echo "killed rank 2 after $(rows) rows"
status=0
for r in 0 1 3; do wait "${pids[$r]}" || { echo "rank $r exited with $?"; status=1; }; done
grep -E "posted again|workers validated" "$OUT/rank0.log" || true
python3 - "$OUT/evaluations.csv" "$EVALS" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ids, specs = [r["id"] for r in rows], {r["spec_json"] for r in rows}
ok = len(rows) == int(sys.argv[2]) and ids == [str(i) for i in range(len(rows))] and len(specs) == len(rows)
print(f"{len(rows)} rows, {len(specs)} distinct specs, ids 0..{len(rows) - 1}: {'every candidate once' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY
exit $status
