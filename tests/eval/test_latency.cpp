// The latency harness: forwards timed interleaved in rounds, and why: a
// machine that slows down during a measurement moves every forward alike,
// so their per-round ratio stays what it is.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <chrono>
#include <vector>

#include "src/core/error.hpp"
#include "src/eval/latency.hpp"

using namespace qnas;

namespace {

// Busy for `ms` milliseconds of wall time (sleeping would add the
// scheduler's wake-up latency).
void spin_ms(double ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
  while (std::chrono::steady_clock::now() < end) {
  }
}

core::LatencyConfig config(int warmup, int runs, int rounds) {
  core::LatencyConfig lc;
  lc.warmup = warmup;
  lc.runs = runs;
  lc.rounds = rounds;
  return lc;
}

}  // namespace

TEST(Latency, InterleavedRoundsRotateTheOrderAndTimeEveryForwardAlike) {
  std::vector<int> calls;
  std::vector<eval::TimedForward> forwards;
  for (int k = 0; k < 3; ++k)
    forwards.push_back([&calls, k](const at::Tensor& x) {
      calls.push_back(k);
      return x;
    });
  const auto t = eval::measure_interleaved(forwards, at::zeros({1}), config(/*warmup=*/2, /*runs=*/7, /*rounds=*/3));
  // 2 warm-up calls each, then 3 rounds of ceil(7 / 3) = 3 calls each.
  ASSERT_EQ(calls.size(), size_t(3 * (2 + 3 * 3)));
  for (int k = 0; k < 3; ++k) EXPECT_EQ(std::count(calls.begin(), calls.end(), k), 11);
  // Round r starts with forward r mod 3.
  for (int round = 0; round < 3; ++round) EXPECT_EQ(calls[6 + size_t(round) * 9], round % 3) << round;
  ASSERT_EQ(t.stats.size(), 3u);
  ASSERT_EQ(t.round_median_ms.size(), 3u);
  for (const auto& r : t.round_median_ms) EXPECT_EQ(r.size(), 3u);
  EXPECT_THROW(t.ratio(3), Error);
}

TEST(Latency, RatioToAReferenceSurvivesAMachineThatSlowsDown) {
  // The machine runs everything twice as slowly after its first 40 timed
  // passes: B is truly twice A.
  int passes = 0;
  const auto slowdown = [&passes] { return ++passes > 40 ? 2.0 : 1.0; };
  const eval::TimedForward a = [&](const at::Tensor& x) { spin_ms(0.3 * slowdown()); return x; };
  const eval::TimedForward b = [&](const at::Tensor& x) { spin_ms(0.6 * slowdown()); return x; };
  const auto lc = config(/*warmup=*/0, /*runs=*/40, /*rounds=*/20);
  const auto t = eval::measure_interleaved({a, b}, at::zeros({1}), lc);
  EXPECT_NEAR(t.ratio(1).median_ms, 2.0, 0.25);
  EXPECT_NEAR(t.ratio(0).median_ms, 1.0, 1e-12);
  // Timed one after the other, A on the fast machine and B on the slow one.
  passes = 0;
  const double alone_a = eval::measure_latency(a, at::zeros({1}), lc).median_ms;
  const double alone_b = eval::measure_latency(b, at::zeros({1}), lc).median_ms;
  EXPECT_GT(alone_b / alone_a, 3.0);
}

TEST(Latency, ScaledMultipliesEveryStatistic) {
  eval::LatencyStats s{1.0, 0.5, 2.0, 0.25};
  const auto x = eval::scaled(s, 3.0);
  EXPECT_DOUBLE_EQ(x.median_ms, 3.0);
  EXPECT_DOUBLE_EQ(x.p10_ms, 1.5);
  EXPECT_DOUBLE_EQ(x.p90_ms, 6.0);
  EXPECT_DOUBLE_EQ(x.std_ms, 0.75);
}
