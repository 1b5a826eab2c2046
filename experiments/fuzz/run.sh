#!/usr/bin/env bash
# Fuzzes every reader of outside input that has a target in tests/fuzz:
# builds them with clang (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer)
# into build-fuzz/, then runs each for SECONDS (default 60) from its committed
# seed corpus tests/fuzz/corpus/<name>/. New inputs go to runs/fuzz/<name>/new
# (the committed corpus is left as it is); a finding stops that target with
# libFuzzer's report, its input saved in runs/fuzz/<name>/findings/, and the
# script exits non-zero after running the others.
#
#   [JOBS=2] experiments/fuzz/run.sh [SECONDS]      needs scripts/install-deps.sh --fuzz
set -euo pipefail
cd "$(dirname "$0")/../.."
each=${1:-60}
build=${BUILD:-build-fuzz}
targets=(config idx spec deployed search_files image cifar)
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DQNAS_FUZZ=ON -DQNAS_BUILD_TESTS=OFF -DQNAS_BUILD_BENCHMARKS=OFF > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --target "${targets[@]/#/fuzz_}"
# One target: its log, then a line of its stats on stderr; non-zero on a finding.
fuzz_one() {
  local name=$1 out="runs/fuzz/$1"
  mkdir -p "$out/new" "$out/findings"
  echo "== fuzz_$name for ${each}s" >&2
  # -rss_limit_mb: a reader that believes a header's claimed size is a finding.
  local rc=0
  "$build/tests/fuzz/fuzz_$name" -max_total_time="$each" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$out/findings/" "$out/new" "tests/fuzz/corpus/$name" > "$out/log.txt" 2>&1 || rc=1
  grep -E "INITED|DONE|^stat::number_of_executed_units|^stat::peak_rss_mb|ERROR|SUMMARY" "$out/log.txt" |
    sed "s/^/$name: /" >&2 || true
  return $rc
}
# JOBS targets at a time (default 1; each takes one core).
jobs=${JOBS:-1}
failed=()
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  pids=()
  for name in "${targets[@]:i:jobs}"; do
    fuzz_one "$name" &
    pids+=("$!:$name")
  done
  for entry in "${pids[@]}"; do
    wait "${entry%%:*}" || failed+=("${entry#*:}")
  done
done
if ((${#failed[@]})); then
  echo "fuzz: findings in ${failed[*]} (logs: runs/fuzz/<name>/log.txt, inputs: runs/fuzz/<name>/findings/)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no finding in ${each}s each" >&2
