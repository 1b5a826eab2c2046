// The arithmetic of local-metric sensitivity: SQNR, Spearman's rank
// correlation by hand, and the greedy mixed-precision allocator (budget kept,
// monotone in the budget, sensitive layers kept wider).
#include <gtest/gtest.h>

#include <cmath>

#include "src/quant/sensitivity.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_error;

TEST(Sensitivity, SqnrOfSignalAndNoiseEnergies) {
  quant::SignalNoise s;
  s.add(100, 1, 10);
  EXPECT_NEAR(s.sqnr_db(), 20.0, 1e-12);
  EXPECT_NEAR(s.mse(), 0.1, 1e-12);
  s.add(0, 9, 10);  // energies add before the ratio is taken
  EXPECT_NEAR(s.sqnr_db(), 10.0, 1e-12);
  EXPECT_EQ(quant::SignalNoise{}.sqnr_db(), 200.0);  // no noise: capped, not infinite
}

TEST(Sensitivity, SpearmanByHand) {
  // Ranks 1 2 3 4 vs 1 3 2 4: d^2 sums to 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8.
  EXPECT_NEAR(quant::spearman({1, 2, 3, 4}, {10, 30, 20, 40}), 0.8, 1e-12);
  EXPECT_NEAR(quant::spearman({1, 2, 3}, {-1, -5, -9}), -1.0, 1e-12);
  // Ties take their average rank: b's ranks are 1.5 1.5 3 4 -> Pearson of
  // (1,2,3,4) and (1.5,1.5,3,4) = 4.5 / sqrt(5 * 4.5).
  EXPECT_NEAR(quant::spearman({1, 2, 3, 4}, {7, 7, 8, 9}), 4.5 / std::sqrt(5 * 4.5), 1e-12);
  EXPECT_EQ(quant::spearman({1, 2, 3}, {5, 5, 5}), 0.0);
  expect_error([] { quant::spearman({1, 2}, {1}); }, {"equal lengths"});
}

namespace {

// Layers with costs proportional to bits (bytes of `size` weights) and
// sensitivities s * 4^-(bits): each bit halves the quantization noise.
std::vector<quant::AllocationLayer> layers_of(const std::vector<double>& size, const std::vector<double>& s) {
  std::vector<quant::AllocationLayer> layers;
  for (size_t i = 0; i < size.size(); ++i) {
    quant::AllocationLayer l{"l" + std::to_string(i), {2, 3, 4, 8}, {}, {}};
    for (int b : l.bits) {
      l.cost.push_back(size[i] * b / 8);
      l.sensitivity.push_back(s[i] * std::pow(4.0, -b));
    }
    layers.push_back(l);
  }
  return layers;
}

}  // namespace

TEST(Allocator, KeepsEveryBudgetAndIsMonotoneInIt) {
  const auto layers = layers_of({1000, 4000, 250, 9000, 640, 3000}, {5, 0.1, 40, 1, 2, 0.5});
  double lowest = 0, highest = 0;
  for (const auto& l : layers) lowest += l.cost.front(), highest += l.cost.back();
  std::vector<int> previous(layers.size(), 0);
  for (double budget = lowest; budget <= highest + 1; budget += (highest - lowest) / 97) {
    const auto a = quant::allocate_bits(layers, budget);
    EXPECT_LE(a.cost, budget + 1e-9);
    double cost = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
      EXPECT_GE(a.bits[i], previous[i]) << "budget " << budget << " layer " << i;  // more budget, never fewer bits
      for (size_t k = 0; k < layers[i].bits.size(); ++k)
        if (layers[i].bits[k] == a.bits[i]) cost += layers[i].cost[k];
    }
    EXPECT_NEAR(a.cost, cost, 1e-9);
    previous = a.bits;
  }
  EXPECT_EQ(quant::allocate_bits(layers, lowest).bits, std::vector<int>(layers.size(), 2));
  EXPECT_EQ(quant::allocate_bits(layers, highest).bits, std::vector<int>(layers.size(), 8));
  expect_error([&] { quant::allocate_bits(layers, lowest - 1); }, {"below the smallest reachable cost"});
}

TEST(Allocator, KeepsTheSensitiveLayerWide) {
  // Two layers of equal size; saving one layer's worth of 6 bits must come from the robust one.
  const auto layers = layers_of({800, 800}, {1000, 1});
  const auto a = quant::allocate_bits(layers, 800.0 * 10 / 8);
  EXPECT_EQ(a.bits, (std::vector<int>{8, 2}));
}
