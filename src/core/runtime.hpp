#pragma once
// Process-wide LibTorch settings taken from the config.

#include <string>

#include "src/core/config.hpp"

namespace qnas::core {

/// Process-wide settings measured to matter: freed large blocks stay in the
/// heap instead of returning to the OS, and oneDNN's int8 kernels are capped
/// at AVX-512 VNNI unless ONEDNN_MAX_CPU_ISA is set (called by init_runtime;
/// benchmarks and tests call it directly, before any LibTorch op).
void tune_process();

/// Sets LibTorch's thread count (config.threads; 0 = the launcher's
/// OMP_NUM_THREADS when `ranks_on_host` > 1, else the cores shared among the
/// ranks_on_host processes of a job on this host) and checks that the
/// device exists; returns the thread count in use. Refuses ranks x threads
/// above the cores unless dist.oversubscribe.
int init_runtime(const Config& config, int ranks_on_host = 1);

/// "cpu", or "cuda" when the config asks for it and LibTorch has it.
std::string device_name(const Config& config);

}  // namespace qnas::core
