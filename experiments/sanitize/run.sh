#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer: builds
# qnas and its tests with -DQNAS_SANITIZE=ON into build-asan/ (a clean build
# takes about as long as the normal one) and runs ctest there. Any ASan or
# UBSan report fails the test it happens in (UBSan does not recover). Leak
# reports from inside LibTorch and the other uninstrumented system libraries
# are suppressed, each with its reason, in experiments/sanitize/lsan.supp;
# leaks in qnas's own code are not.
#
#   experiments/sanitize/run.sh [CTEST_ARGS...]    e.g. -R Safetensors
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build-asan}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQNAS_SANITIZE=ON -DQNAS_BUILD_BENCHMARKS=OFF \
  > /dev/null
cmake --build "$build"
supp="$PWD/experiments/sanitize/lsan.supp"
# Every report also goes to a file under $reports: a test that expects a
# `qnas` child to fail would otherwise take a child's report (exit 1) for
# the failure it expected.
reports="$PWD/$build/sanitizer-reports"
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="abort_on_error=0:detect_odr_violation=0:log_path=$reports/asan:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan:${UBSAN_OPTIONS:-}"
start=$(date +%s)
rc=0
ctest --test-dir "$build" -j 2 --output-on-failure "$@" || rc=$?
if compgen -G "$reports/*" > /dev/null; then
  cat "$reports"/* >&2
  echo "sanitize: sanitizer reports above (files in $reports)" >&2
  exit 1
fi
((rc == 0)) || exit $rc
echo "sanitize: suite clean under ASan + UBSan in $(( $(date +%s) - start )) s" >&2
