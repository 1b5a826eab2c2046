// Evolutionary operators and NSGA-II on a discretised ZDT1.
#include <gtest/gtest.h>

#include <cmath>

#include "search/evolution.hpp"
#include "search/pareto.hpp"
#include "tests/search/synthetic.hpp"

namespace qs = qnas::search;

namespace {

// ZDT1 on genes 0..100 mapped to [0, 1]: front f2 = 1 - sqrt(f1) at g = 1.
void zdt1(std::vector<qs::Individual>& batch) {
  for (auto& ind : batch) {
    const auto& x = ind.genome;
    const double f1 = x[0] / 100.0;
    double s = 0;
    for (size_t i = 1; i < x.size(); ++i) s += x[i] / 100.0;
    const double g = 1.0 + 9.0 * s / double(x.size() - 1);
    ind.f = {f1, g * (1.0 - std::sqrt(f1 / g))};
  }
}

}  // namespace

TEST(Operators, StayInRangeAndChangeSomething) {
  const auto space = qs::testing::synthetic_space(12, 5);
  qnas::core::Rng rng(1);
  int changed = 0;
  for (int t = 0; t < 200; ++t) {
    const auto a = space.random(rng), b = space.random(rng);
    auto [c1, c2] = qs::sbx(a, b, space.cardinalities(), 15, rng);
    qs::polynomial_mutation(c1, space.cardinalities(), 0.2, 20, rng);
    for (size_t i = 0; i < c1.size(); ++i) {
      EXPECT_GE(c1[i], 0);
      EXPECT_LT(c1[i], 5);
      EXPECT_GE(c2[i], 0);
      EXPECT_LT(c2[i], 5);
    }
    changed += (c1 != a && c1 != b);
  }
  EXPECT_GT(changed, 50);
}

TEST(Operators, DasDennisDirections) {
  const auto dirs = qs::reference_directions(3, 50);
  EXPECT_EQ(dirs.size(), 45u);  // 8 partitions: C(10, 2)
  for (const auto& d : dirs) EXPECT_NEAR(d[0] + d[1] + d[2], 1.0, 1e-12);
  EXPECT_EQ(qs::reference_directions(2, 10).size(), 10u);
}

TEST(Offspring, NeverRepeatsNorReturnsExcluded) {
  const auto space = qs::testing::synthetic_space(3, 2);  // 8 genomes in all
  qnas::core::Rng rng(2);
  std::unordered_set<std::string> exclude;
  std::vector<qs::Individual> parents;
  for (auto& g : qs::random_genomes(space, 3, rng, exclude)) parents.push_back({g, {0.0, 0.0}, 0});
  const auto kids = qs::make_offspring(space, parents, 10, qs::Survival::kNsga2, {}, rng, exclude);
  EXPECT_EQ(kids.size(), 5u);  // only 5 genomes are left in the space
  EXPECT_EQ(exclude.size(), 8u);
}

TEST(Nsga2, ApproachesTheZdt1Front) {
  // Hypervolume of the continuous front against (1.1, 1.1):
  // integral_0^1 (1.1 - (1 - sqrt x)) dx + 0.1 * 1.1 = 0.1 + 2/3 + 0.11.
  const double true_hv = 0.1 + 2.0 / 3.0 + 0.11;
  const auto space = qs::testing::synthetic_space(10, 101);
  for (uint64_t seed : {1, 2, 3}) {
    qnas::core::Rng rng(seed);
    qs::Operators ops;
    ops.mutation_prob = 0.1;  // 1 / n_variables, as usual for ZDT
    const auto pop = qs::evolve(space, 60, 15000, qs::Survival::kNsga2, ops, zdt1, rng);
    std::vector<qs::Point> f;
    for (const auto& ind : pop) f.push_back(ind.f);
    const double hv = qs::hypervolume(f, {1.1, 1.1});
    EXPECT_GT(hv, 0.97 * true_hv) << "seed " << seed;
    EXPECT_LE(hv, true_hv + 1e-9);
  }
}

TEST(Nsga3, SpreadsOverThreeObjectives) {
  // DTLZ1-like linear front f1 + f2 + f3 = 1 on two position genes and
  // distance genes that must reach 0.
  const auto space = qs::testing::synthetic_space(6, 21);
  const qs::BatchObjective dtlz = [](std::vector<qs::Individual>& batch) {
    for (auto& ind : batch) {
      const auto& x = ind.genome;
      double g = 0;
      for (size_t i = 2; i < x.size(); ++i) g += x[i] / 20.0;
      const double a = x[0] / 20.0, b = x[1] / 20.0;
      ind.f = {(1 + g) * a * b, (1 + g) * a * (1 - b), (1 + g) * (1 - a)};
    }
  };
  qnas::core::Rng rng(4);
  const auto pop = qs::evolve(space, 50, 10000, qs::Survival::kNsga3, {}, dtlz, rng);
  int on_front = 0, corner_regions[3] = {0, 0, 0};
  for (const auto& ind : pop) {
    on_front += std::abs(ind.f[0] + ind.f[1] + ind.f[2] - 1.0) < 1e-9;
    for (int k = 0; k < 3; ++k) corner_regions[k] += ind.f[size_t(k)] > 0.5;
  }
  EXPECT_GE(on_front, 45);
  for (int k = 0; k < 3; ++k) EXPECT_GE(corner_regions[k], 3) << "objective " << k;
}
