#include "src/core/runtime.hpp"

#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <malloc.h>
#include <stdlib.h>

#include <thread>

#include "src/core/error.hpp"

namespace qnas::core {

void tune_process() {
  // Large tensors otherwise go through mmap/munmap on every allocation and
  // are page-faulted in again each time: measured here, that is 2x the wall
  // time of an evaluation, nearly all of it system time.
  // glibc caps M_MMAP_THRESHOLD at 32 MiB, below one training activation of
  // batch 128, so mmap is turned off instead.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // oneDNN picks its AMX int8 kernels where the CPU has them; on this
  // project's layers (tiny 1x1 convs, batch 1-64) they are 2-3x slower per
  // call than the AVX-512 VNNI ones (measured with
  // experiments/bench/int8_latency). A cap set by the user wins. It must be
  // set before oneDNN's first primitive, hence here.
  setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI", /*overwrite=*/0);
}

int init_runtime(const Config& config) {
  tune_process();
  const int threads = config.threads > 0 ? config.threads
                                         : int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  device_name(config);
  return threads;
}

std::string device_name(const Config& config) {
  if (config.device == "cuda") {
    QNAS_CHECK(at::hasCUDA(), "device: 'cuda' requested, but this LibTorch was built without CUDA "
               "(Debian's libtorch is CPU-only); expected 'cpu'");
    // Refused rather than silently run on the CPU: the trainer's fused
    // kernels and the evaluator are CPU code today.
    QNAS_THROW("device: 'cuda' is not supported yet (training and evaluation run on the CPU); expected 'cpu'");
  }
  return config.device;
}

}  // namespace qnas::core
