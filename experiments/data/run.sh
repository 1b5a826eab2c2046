#!/usr/bin/env bash
# The real-data check of the data readers: Fashion-MNIST through the IDX
# reader, and the same pixels written as a PNG class-folder tree
# (fmnist_to_png.py) through the folder reader; a quickstart supernet
# trained on each (all 60,000 training images: data.val_size 0, so both see
# the same images, in different orders), then the largest and smallest
# subnets' test top-1 compared. The folder is trained twice: decoded into
# memory, and streamed from disk (data.storage: stream), which must give
# the same numbers. A run whose results exist is not repeated. ~17 minutes
# on 2 cores.
#
#   experiments/data/run.sh [OUT=runs/data_check]
set -euo pipefail
cd "$(dirname "$0")/../.."
QNAS=${QNAS:-build/qnas}
OUT=${1:-runs/data_check}
mkdir -p "$OUT"

if [[ ! -d "$OUT/png/test" ]]; then
  /usr/bin/python3 experiments/data/fmnist_to_png.py /usr/share/datasets/fashion-mnist "$OUT/png.tmp"
  rm -rf "$OUT/png" && mv "$OUT/png.tmp" "$OUT/png"
fi

for format in idx folder folder_stream; do
  [[ -f "$OUT/$format/test_smallest.json" ]] && continue
  sets=(--set data.val_size=0 --set "output.dir=$OUT/$format")
  storage=memory
  [[ $format == folder_stream ]] && storage=stream
  [[ $format == folder* ]] && sets+=(--set data.format=folder --set "data.dir=$OUT/png" --set data.storage=$storage)
  start=$(date +%s)
  "$QNAS" train configs/quickstart.yaml "${sets[@]}"
  echo "$format: trained in $(( $(date +%s) - start )) s" >&2
  for subnet in largest smallest; do
    "$QNAS" eval configs/quickstart.yaml "${sets[@]}" --subnet $subnet --split test --no-latency \
      --json "$OUT/$format/test_$subnet.json" > /dev/null
  done
done

/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print("| subnet | idx test top-1 | folder (PNG) test top-1 | difference | folder streamed |")
print("|---|---|---|---|---|")
for subnet in ("largest", "smallest"):
    a, b, c = (json.load(open(f"{out}/{f}/test_{subnet}.json"))["metrics"]["top1"]
               for f in ("idx", "folder", "folder_stream"))
    print(f"| {subnet} | {a:.2f} | {b:.2f} | {b - a:+.2f} | {c:.2f} |")
PY
