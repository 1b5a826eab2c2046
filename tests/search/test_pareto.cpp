// Non-dominated sorting, crowding distance and hypervolume on hand-made sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "search/objectives.hpp"
#include "search/pareto.hpp"
#include "src/core/error.hpp"

namespace qs = qnas::search;

TEST(Pareto, NonDominatedSortOnAHandMadeSet) {
  //  0:(1,5) 1:(2,3) 2:(4,1) front 0;  3:(3,4) 4:(5,2) front 1;  5:(6,6) front 2
  const std::vector<qs::Point> p = {{1, 5}, {2, 3}, {4, 1}, {3, 4}, {5, 2}, {6, 6}};
  const auto fronts = qs::non_dominated_sort(p);
  ASSERT_EQ(fronts.size(), 3u);
  EXPECT_EQ(fronts[0], (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(fronts[1], (std::vector<int>{3, 4}));
  EXPECT_EQ(fronts[2], (std::vector<int>{5}));
  // Constraints: an infeasible point drops behind every feasible one.
  const auto constrained = qs::non_dominated_sort(p, {0, 0.5, 0, 0, 0, 0});
  EXPECT_EQ(constrained[0], (std::vector<int>{0, 2, 3}));  // (3,4) was dominated only by (2,3)
  EXPECT_EQ(constrained.back(), (std::vector<int>{1}));
  EXPECT_TRUE(qs::dominates({1, 1}, {1, 2}));
  EXPECT_FALSE(qs::dominates({1, 2}, {1, 2}));
}

TEST(Pareto, CrowdingDistanceByHand) {
  // Sorted on f1: 0,1,2,3 with f1 = 0,1,3,4 and f2 = 4,3,1,0 (ranges 4 and 4).
  const std::vector<qs::Point> p = {{0, 4}, {1, 3}, {3, 1}, {4, 0}};
  const auto cd = qs::crowding_distance(p, {0, 1, 2, 3});
  EXPECT_TRUE(std::isinf(cd[0]));
  EXPECT_TRUE(std::isinf(cd[3]));
  EXPECT_NEAR(cd[1], (3.0 - 0.0) / 4 + (4.0 - 1.0) / 4, 1e-12);
  EXPECT_NEAR(cd[2], (4.0 - 1.0) / 4 + (3.0 - 0.0) / 4, 1e-12);
}

TEST(Hypervolume, TwoDimensionsByHand) {
  // Staircase (1,3) (2,2) (3,1) against (4,4): strips 1*1 + 1*2 + 1*3 = 6.
  std::vector<qs::Point> p = {{1, 3}, {2, 2}, {3, 1}};
  EXPECT_DOUBLE_EQ(qs::hypervolume(p, {4, 4}), 6.0);
  // Order, duplicates, dominated points and points outside the box change nothing.
  std::vector<qs::Point> q = {{3, 1}, {2, 2}, {1, 3}, {2, 2}, {3, 3}, {5, 0}, {0, 4}};
  EXPECT_DOUBLE_EQ(qs::hypervolume(q, {4, 4}), 6.0);
  EXPECT_DOUBLE_EQ(qs::hypervolume({}, {4, 4}), 0.0);
  EXPECT_DOUBLE_EQ(qs::hypervolume({{2}, {1}}, {3}), 2.0);
}

TEST(Hypervolume, ThreeDimensionsByHand) {
  EXPECT_DOUBLE_EQ(qs::hypervolume({{1, 1, 1}}, {2, 2, 2}), 1.0);
  // Boxes [0,2]x[1,2]x[1,2] (2) and [1,2]x[0,2]x[1,2] (2) overlap in a unit cube: 3.
  std::vector<qs::Point> p = {{0, 1, 1}, {1, 0, 1}};
  EXPECT_DOUBLE_EQ(qs::hypervolume(p, {2, 2, 2}), 3.0);
  // Adding [1,2]x[1,2]x[0,2] (2), overlapping the union in a unit cube: 4.
  p.push_back({1, 1, 0});
  EXPECT_DOUBLE_EQ(qs::hypervolume(p, {2, 2, 2}), 4.0);
  std::vector<qs::Point> shuffled = {{1, 1, 0}, {1, 0, 1}, {1, 1, 0}, {0, 1, 1}, {1.5, 1.5, 1.5}};
  EXPECT_DOUBLE_EQ(qs::hypervolume(shuffled, {2, 2, 2}), 4.0);
  EXPECT_THROW(qs::hypervolume({{1, 1, 1, 1}}, {2, 2, 2, 2}), qnas::Error);
}

TEST(Hypervolume, GreedyBatchTakesTheLargestGainFirst) {
  // Base (1,3), reference (5,5). Alone, B adds 4, C 1.5, A 0.35; after B,
  // C adds 0.5 and A 0.15. D is dominated (adds nothing); E would add most
  // but is not eligible (infeasible); both follow in their given order.
  const std::vector<qs::Point> base = {{1, 3}};
  const std::vector<qs::Point> cand = {{1.5, 2.9}, {3, 1}, {2, 2.5}, {4, 4}, {0.5, 0.5}};
  const std::vector<bool> eligible = {true, true, true, true, false};
  EXPECT_EQ(qs::greedy_hypervolume_batch(base, cand, eligible, 5, {5, 5}), (std::vector<int>{1, 2, 0, 3, 4}));
  EXPECT_EQ(qs::greedy_hypervolume_batch(base, cand, eligible, 2, {5, 5}), (std::vector<int>{1, 2}));
  // Without a base, the first pick is the largest box: E when eligible.
  EXPECT_EQ(qs::greedy_hypervolume_batch({}, cand, std::vector<bool>(5, true), 1, {5, 5}), (std::vector<int>{4}));
  EXPECT_THROW(qs::greedy_hypervolume_batch(base, cand, {true}, 1, {5, 5}), qnas::Error);
}

TEST(Hypervolume, ReferenceBeyondTheWorstPoint) {
  const auto ref = qs::reference_beyond({{0, 10, 3}, {2, 20, 3}});
  EXPECT_DOUBLE_EQ(ref[0], 2.2);
  EXPECT_DOUBLE_EQ(ref[1], 21.0);
  EXPECT_DOUBLE_EQ(ref[2], 3.03);  // all equal: 1 % of the value
  EXPECT_THROW(qs::reference_beyond({}), qnas::Error);
}

TEST(Objectives, MinimisationFormAndViolation) {
  qnas::core::SearchConfig cfg;
  cfg.objectives = {{"top1", "max"}, {"latency_ms", "min"}};
  cfg.constraints = {{"latency_ms", "<= 2.0"}, {"model_bytes", ">= 1000"}};
  const auto g = qs::Goals::from_config(cfg);
  const qs::MetricValues m = {{"top1", 90}, {"latency_ms", 3.0}, {"model_bytes", 500}};
  EXPECT_EQ(g.to_min(m), (qs::Point{-90, 3.0}));
  EXPECT_NEAR(g.violation(m), 0.5 + 0.5, 1e-12);
  EXPECT_EQ(g.metric_names(), (std::vector<std::string>{"top1", "latency_ms", "model_bytes"}));
  EXPECT_THROW(g.to_min({{"top1", 90}}), qnas::Error);
  const auto parsed = qs::Goals::parse_objectives("top1:max,latency_ms:min");
  ASSERT_EQ(parsed.objectives.size(), 2u);
  EXPECT_TRUE(parsed.objectives[0].maximize);
  EXPECT_THROW(qs::Goals::parse_objectives("top1:up"), qnas::Error);
}
