#pragma once
// Latency harness: warm-up runs, then timed runs of one forward pass, at a
// given thread count; and the peak memory a run adds. Used by `qnas eval`,
// the search and experiments/bench/int8_latency.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "src/core/config.hpp"
#include "src/eval/metrics.hpp"

namespace qnas::eval {

struct LatencyStats {
  double median_ms = 0, p10_ms = 0, p90_ms = 0, std_ms = 0;
};

/// Times `forward(input)` (its result discarded): `opts.warmup` untimed
/// runs, then `opts.runs` timed ones, with LibTorch at `opts.threads`
/// threads; the previous thread count is restored. The batch is the input's.
LatencyStats measure_latency(const std::function<at::Tensor(const at::Tensor&)>& forward,
                             const at::Tensor& input, const core::LatencyConfig& opts);

/// The median of `values` (the mean of the middle two for an even count);
/// 0 for none.
double median(std::vector<double> values);

/// Adds latency_ms, latency_ms_p10, latency_ms_p90, latency_ms_std.
void add_latency_metrics(const LatencyStats& s, Metrics& m);

/// Resident set size now, and the peak since the last reset_peak_rss()
/// (Linux: /proc/self/status VmRSS / VmHWM; 0 where unavailable).
int64_t current_rss_bytes();
int64_t peak_rss_bytes();
/// Resets the peak to the current RSS (/proc/self/clear_refs); false when
/// the kernel does not allow it.
bool reset_peak_rss();

}  // namespace qnas::eval
