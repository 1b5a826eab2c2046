#include "src/core/runtime.hpp"

#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <malloc.h>
#include <stdlib.h>

#include <cstdlib>

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

int init_runtime(const Config& config, int ranks_on_host) {
  tune_process();
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  // Several ranks: the launcher's OMP_NUM_THREADS (torchrun sets 1) before
  // an even share of the cores; one process keeps using all of them.
  const char* launcher_threads = ranks_on_host > 1 ? std::getenv("OMP_NUM_THREADS") : nullptr;
  const int threads = config.threads > 0       ? config.threads
                      : launcher_threads != nullptr && std::atoi(launcher_threads) > 0 ? std::atoi(launcher_threads)
                                                                                    : std::max(1, cores / std::max(1, ranks_on_host));
  QNAS_CHECK(ranks_on_host <= 1 || threads * ranks_on_host <= cores || config.dist.oversubscribe, "threads: ",
             threads, " per rank x ", ranks_on_host, " ranks on this host = ", threads * ranks_on_host,
             " threads on ", cores, " cores; expected at most ", cores,
             " (threads: 0 shares the cores among the ranks; dist.oversubscribe: true allows more)");
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
