#include "src/core/runtime.hpp"

#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <malloc.h>

#include <thread>

#include "src/core/error.hpp"

namespace qnas::core {

void tune_allocator() {
  // Large tensors otherwise go through mmap/munmap on every allocation and
  // are page-faulted in again each time: measured here, that is 2x the wall
  // time of an evaluation, nearly all of it system time.
  // glibc caps M_MMAP_THRESHOLD at 32 MiB, below one training activation of
  // batch 128, so mmap is turned off instead.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

int init_runtime(const Config& config) {
  tune_allocator();
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
