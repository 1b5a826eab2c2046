#pragma once
// Latency harness: warm-up runs, then timed runs of forward passes at a
// given thread count, several models interleaved in rounds so that a machine
// that slows down or speeds up during a measurement moves them alike; and the
// peak memory a run adds. Used by `qnas eval`, the search, the latency model
// and experiments/bench/int8_latency.

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

using TimedForward = std::function<at::Tensor(const at::Tensor&)>;

/// Times `forward(input)` (its result discarded): `opts.warmup` untimed
/// runs, then `opts.runs` timed ones, with LibTorch at `opts.threads`
/// threads; the previous thread count is restored. The batch is the input's.
LatencyStats measure_latency(const TimedForward& forward, const at::Tensor& input, const core::LatencyConfig& opts);

/// Several forwards timed interleaved: `opts.warmup` untimed runs of each,
/// then `opts.rounds` rounds in which each forward runs ceil(runs / rounds)
/// timed passes back to back, the order rotated every round.
struct InterleavedLatency {
  std::vector<LatencyStats> stats;                   // per forward, over all its timed runs
  std::vector<std::vector<double>> round_median_ms;  // [forward][round]
  /// Forward `i` relative to forward 0: the quantiles (and spread) of the
  /// per-round ratios of their medians, in units of forward 0's latency.
  LatencyStats ratio(size_t i) const;
};
InterleavedLatency measure_interleaved(const std::vector<TimedForward>& forwards, const at::Tensor& input,
                                       const core::LatencyConfig& opts);

/// `s` scaled by `factor` (a ratio expressed in milliseconds of a reference).
LatencyStats scaled(LatencyStats s, double factor);

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
