#pragma once
// Process-wide LibTorch settings taken from the config.

#include <string>

#include "src/core/config.hpp"

namespace qnas::core {

/// Keeps freed large blocks in the heap instead of returning them to the OS
/// (called by init_runtime; benchmarks and tests call it directly).
void tune_allocator();

/// Sets LibTorch's thread count (0 = all cores) and checks that the device
/// exists; returns the thread count in use.
int init_runtime(const Config& config);

/// "cpu", or "cuda" when the config asks for it and LibTorch has it.
std::string device_name(const Config& config);

}  // namespace qnas::core
