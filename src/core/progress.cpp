#include "src/core/progress.hpp"

#include <cstdio>
#include <cstdlib>

namespace qnas::core {

std::string format_duration(double s) {
  char buf[32];
  if (s < 0) s = 0;
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

double Progress::interval_s() {
  static const double v = [] {
    const char* env = std::getenv("QNAS_PROGRESS_INTERVAL");
    return env ? std::atof(env) : 2.0;
  }();
  return v;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, int64_t items, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() < interval_s()) return;
  last_print_ = now;
  print(done, items, detail, false);
}

void Progress::finish(const std::string& detail) { print(total_, -1, detail, true); }

void Progress::print(int64_t done, int64_t items, const std::string& detail, bool final) {
  const double t = elapsed_s();
  std::string line = label_ + " " + std::to_string(done) + "/" + std::to_string(total_);
  if (!detail.empty()) line += " " + detail;
  if (items > 0 && t > 0) {
    char rate[48];
    const double r = items / t;  // a few decimals when slow (candidates/s)
    std::snprintf(rate, sizeof rate, r < 10 ? " %.2f %s/s" : " %.0f %s/s", r, unit_.c_str());
    line += rate;
  }
  if (final) {
    line += " done in " + format_duration(t);
  } else if (done > 0 && total_ > 0) {
    line += " ETA " + format_duration(t * double(total_ - done) / double(done));
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  last_done_ = done;
}

}  // namespace qnas::core
