#include "src/eval/latency.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "src/core/error.hpp"

namespace qnas::eval {

namespace {

double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

// "VmHWM:    1234 kB" -> bytes
int64_t status_field_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size())) * 1024;
  return 0;
}

// Median, 10th/90th percentiles and standard deviation of `v`.
LatencyStats stats_of(std::vector<double> v) {
  LatencyStats s;
  if (v.empty()) return s;
  double mean = 0;
  for (double x : v) mean += x / double(v.size());
  for (double x : v) s.std_ms += (x - mean) * (x - mean) / double(v.size());
  s.std_ms = std::sqrt(s.std_ms);
  std::sort(v.begin(), v.end());
  s.median_ms = quantile(v, 0.5);
  s.p10_ms = quantile(v, 0.1);
  s.p90_ms = quantile(v, 0.9);
  return s;
}

}  // namespace

LatencyStats measure_latency(const TimedForward& forward, const at::Tensor& input, const core::LatencyConfig& opts) {
  return measure_interleaved({forward}, input, opts).stats[0];
}

InterleavedLatency measure_interleaved(const std::vector<TimedForward>& forwards, const at::Tensor& input,
                                       const core::LatencyConfig& opts) {
  QNAS_CHECK(opts.runs >= 1, "latency: runs ", opts.runs, "; expected at least 1");
  QNAS_CHECK(opts.rounds >= 1, "latency: rounds ", opts.rounds, "; expected at least 1");
  QNAS_CHECK(!forwards.empty(), "latency: nothing to time");
  const int previous = at::get_num_threads();
  at::set_num_threads(opts.threads);
  c10::InferenceMode guard;
  for (const auto& f : forwards)
    for (int i = 0; i < opts.warmup; ++i) f(input);
  const size_t n = forwards.size();
  const int per_round = (opts.runs + opts.rounds - 1) / opts.rounds;
  std::vector<std::vector<double>> all(n);
  InterleavedLatency out;
  out.round_median_ms.assign(n, {});
  for (int round = 0; round < opts.rounds; ++round)
    for (size_t j = 0; j < n; ++j) {
      const size_t k = (j + size_t(round)) % n;
      std::vector<double> ms;
      for (int i = 0; i < per_round; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        forwards[k](input);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      all[k].insert(all[k].end(), ms.begin(), ms.end());
      out.round_median_ms[k].push_back(median(ms));
    }
  at::set_num_threads(previous);
  for (auto& v : all) out.stats.push_back(stats_of(std::move(v)));
  return out;
}

LatencyStats InterleavedLatency::ratio(size_t i) const {
  QNAS_CHECK(i < round_median_ms.size(), "latency: no forward ", i, " among ", round_median_ms.size());
  std::vector<double> r;
  for (size_t k = 0; k < round_median_ms[i].size(); ++k)
    if (round_median_ms[0][k] > 0) r.push_back(round_median_ms[i][k] / round_median_ms[0][k]);
  return stats_of(std::move(r));
}

LatencyStats scaled(LatencyStats s, double factor) {
  s.median_ms *= factor;
  s.p10_ms *= factor;
  s.p90_ms *= factor;
  s.std_ms *= factor;
  return s;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return quantile(values, 0.5);
}

void add_latency_metrics(const LatencyStats& s, Metrics& m) {
  m["latency_ms"] = s.median_ms;
  m["latency_ms_p10"] = s.p10_ms;
  m["latency_ms_p90"] = s.p90_ms;
  m["latency_ms_std"] = s.std_ms;
}

int64_t current_rss_bytes() { return status_field_bytes("VmRSS"); }
int64_t peak_rss_bytes() { return status_field_bytes("VmHWM"); }

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return bool(out);
}

}  // namespace qnas::eval
