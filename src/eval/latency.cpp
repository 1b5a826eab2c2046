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

}  // namespace

LatencyStats measure_latency(const std::function<at::Tensor(const at::Tensor&)>& forward,
                             const at::Tensor& input, const core::LatencyConfig& opts) {
  QNAS_CHECK(opts.runs >= 1, "latency: runs ", opts.runs, "; expected at least 1");
  const int previous = at::get_num_threads();
  at::set_num_threads(opts.threads);
  c10::InferenceMode guard;
  for (int i = 0; i < opts.warmup; ++i) forward(input);
  std::vector<double> ms;
  for (int i = 0; i < opts.runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    forward(input);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  at::set_num_threads(previous);
  LatencyStats s;
  double mean = 0;
  for (double v : ms) mean += v / double(ms.size());
  for (double v : ms) s.std_ms += (v - mean) * (v - mean) / double(ms.size());
  s.std_ms = std::sqrt(s.std_ms);
  std::sort(ms.begin(), ms.end());
  s.median_ms = quantile(ms, 0.5);
  s.p10_ms = quantile(ms, 0.1);
  s.p90_ms = quantile(ms, 0.9);
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
