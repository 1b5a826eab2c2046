#!/usr/bin/env bash
# Installs every Debian package qnas needs. Idempotent: installs only what is
# missing, so it is cheap to re-run.
#
#   scripts/install-deps.sh              build, tests, quickstart, reports
#                                        (npm: the report's charting library;
#                                        chromium + playwright-core: its browser test)
#   scripts/install-deps.sh --bench      also python3-torch, the side-by-side
#                                        baseline of experiments/bench (never
#                                        a dependency of qnas itself)
#   scripts/install-deps.sh --launchers  also the launchers of a job of
#                                        several processes: mpirun
#                                        (openmpi-bin) and torchrun
#                                        (python3-torch; see scripts/torchrun)
#   scripts/install-deps.sh --figures    also matplotlib, which experiments/*/
#                                        analyze.py use for the papers' figures
#   scripts/install-deps.sh --fuzz       also clang and its libFuzzer runtime
#                                        (experiments/fuzz/run.sh)
# Flags combine.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config zlib1g-dev
  libtorch-dev            # supernet, training, quantized ops, TorchScript
  libopenblas0-openmp     # a real BLAS under LibTorch's fp32 matmuls (reference BLAS is ~30x slower)
  libeigen3-dev           # predictors, factorisations
  libtbb-dev              # CPU parallelism outside LibTorch
  libgloo-dev             # c10d's ProcessGroupGloo (data-parallel training) includes its headers
  libpng-dev libjpeg-dev  # image-folder datasets (PNG, JPEG through libjpeg-turbo)
  nlohmann-json3-dev      # specs, state, results
  libyaml-cpp-dev         # configs
  libcli11-dev            # the qnas command line
  libsvm-dev              # epsilon-SVR predictor
  libonnx-dev libprotobuf-dev protobuf-compiler  # ONNX export and checking
  libgtest-dev            # tests
  dataset-fashion-mnist   # the data: /usr/share/datasets/fashion-mnist
  chromium                # the report's browser test (headless)
)
for flag in "$@"; do
  case "$flag" in
    --bench) packages+=(python3-torch python3-numpy) ;;
    --launchers) packages+=(openmpi-bin python3-torch) ;;
    --figures) packages+=(python3-matplotlib) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    *) echo "install-deps: unknown flag '$flag'; expected --bench, --launchers, --figures or --fuzz" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all ${#packages[@]} packages present" >&2
fi

# LibTorch uses whichever libblas.so.3 is selected: make it OpenBLAS.
openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
if [[ -e "$openblas" ]] && [[ "$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)" != "$openblas" ]]; then
  $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu "$openblas"
fi

# npm folders, installed exactly as their lock files say (npm ci) when a
# package of theirs is missing. --ignore-scripts: onnxruntime-node's install
# script fetches GPU binaries from outside and fails offline (its CPU runtime
# is inside the package); playwright-core drives the system's chromium and
# needs no browser download.
#   src/report/js  Vega, Vega-Lite, vega-embed: compiled into qnas, inlined into reports
#   tests/node     onnxruntime-node (ONNX consumer), playwright-core (report browser test);
#                  tests and experiments only, never a dependency of qnas
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v npm >/dev/null; then  # a machine may bring its own Node.js: Debian's only when none
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
npm_folder() {  # DIR PACKAGE...
  local dir="$1"; shift
  for pkg in "$@"; do
    if [[ ! -d "$dir/node_modules/$pkg" ]]; then
      echo "install-deps: installing the npm packages of ${dir#$root/}" >&2
      (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --silent)
      return
    fi
  done
}
npm_folder "$root/src/report/js" vega vega-lite vega-embed
npm_folder "$root/tests/node" onnxruntime-node playwright-core
