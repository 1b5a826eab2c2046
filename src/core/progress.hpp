#pragma once
// Progress lines on stderr for long work: step, rate, ETA. Results never go
// here; they go to files and stdout.

#include <chrono>
#include <cstdint>
#include <string>

namespace qnas::core {

/// Formats seconds as "1h02m", "4m12s" or "12.3s".
std::string format_duration(double seconds);

class Progress {
 public:
  /// `label` prefixes every line; `total` steps make 100%; `unit` names what
  /// the rate counts (e.g. "img").
  Progress(std::string label, int64_t total, std::string unit);

  /// Reports that `done` steps are finished and `items` rate units were
  /// processed since the start; prints when the interval has passed.
  void update(int64_t done, int64_t items, const std::string& detail = "");

  /// Prints the final line unconditionally.
  void finish(const std::string& detail = "");

  double elapsed_s() const;

  /// Seconds between lines (default 2; QNAS_PROGRESS_INTERVAL overrides).
  static double interval_s();

 private:
  void print(int64_t done, int64_t items, const std::string& detail, bool final);

  std::string label_, unit_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_, last_print_;
  int64_t last_done_ = 0;
};

}  // namespace qnas::core
