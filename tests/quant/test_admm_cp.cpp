// Quantization-aware CP factorization (AO-ADMM): exact on low-rank tensors
// without a grid, residuals that shrink, factors on their grids, and a lower
// error than factorizing first and rounding after.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "src/quant/admm_cp.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using Eigen::MatrixXd;

namespace {

MatrixXd gaussian(int64_t rows, int64_t cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  MatrixXd m(rows, cols);
  for (Eigen::Index c = 0; c < m.cols(); ++c)
    for (Eigen::Index r = 0; r < m.rows(); ++r) m(r, c) = normal(rng);
  return m;
}

// [[A, B, C]] of random factors of `rank`, plus `noise` times Gaussian noise.
quant::Tensor3 low_rank(int64_t i, int64_t j, int64_t k, int64_t rank, double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const quant::CpFactors f{gaussian(i, rank, rng), gaussian(j, rank, rng), gaussian(k, rank, rng)};
  return {i, j, k, f.reconstruct() + noise * gaussian(i, j * k, rng)};
}

void expect_on_grid(const MatrixXd& m, const quant::FactorGrid& g) {
  ASSERT_GT(g.step, 0);
  for (Eigen::Index c = 0; c < m.cols(); ++c)
    for (Eigen::Index r = 0; r < m.rows(); ++r) {
      const double q = m(r, c) / g.step;
      EXPECT_NEAR(q, std::nearbyint(q), 1e-9);
      EXPECT_LE(std::abs(q), double(g.qmax()) + 1e-9);
    }
}

}  // namespace

TEST(AdmmCp, RankFromTheReductionRate) {
  EXPECT_EQ(quant::cp_rank(64, 32, 9, 2.0), 87);  // floor(18432 / 105 / 2)
  EXPECT_EQ(quant::cp_rank(10, 512, 1, 1.5), 6);  // floor(5120 / 523 / 1.5)
  EXPECT_EQ(quant::cp_rank(2, 2, 1, 100.0), 1);
  qnas::testing::expect_error([] { quant::cp_rank(2, 2, 1, 0); }, {"reduction rate 0"});
}

TEST(AdmmCp, WithoutAGridItIsCpAlsAndRecoversALowRankTensorExactly) {
  const auto x = low_rank(7, 6, 5, 3, 0.0, 1);
  quant::CpSettings s;
  s.outer_tol = 1e-12;
  s.max_outer = 2000;
  const auto als = quant::cp_als(x, 3, s);
  const auto admm = quant::admm_cp(x, 3, s);
  EXPECT_LT(als.relative_error, 1e-5);
  EXPECT_LT(admm.relative_error, 1e-5);
  EXPECT_EQ(admm.grid_a.bits, 32);
  // From a point CP-ALS has not converged to, one ADMM sweep without a grid is one ALS sweep.
  s.max_outer = 1;
  const auto start = quant::cp_als(x, 3, s);
  auto one_als = s, one_admm = s;
  one_als.max_outer = 2;
  EXPECT_NEAR(quant::cp_als(x, 3, one_als).relative_error, quant::admm_cp(x, 3, one_admm).relative_error,
              1e-3 * start.relative_error);  // the inner loop stops at residuals of 1e-8 (squared)
}

TEST(AdmmCp, ResidualsShrinkAndFactorsLieOnTheirGrids) {
  const auto x = low_rank(12, 10, 9, 6, 0.1, 2);
  quant::CpSettings s;
  s.bits = 4;
  const auto r = quant::admm_cp(x, 6, s);
  const auto& t = r.first_update;
  ASSERT_GE(t.primal.size(), 2u);
  EXPECT_LT(t.primal.back(), 1e-3 * t.primal.front());
  EXPECT_LT(t.primal.back(), s.inner_tol * 10);
  EXPECT_LT(t.dual.back(), s.inner_tol * 10);
  expect_on_grid(r.factors.a, r.grid_a);
  expect_on_grid(r.factors.b, r.grid_b);
  expect_on_grid(r.factors.c, r.grid_c);
  // The outer loop ran until the error settled.
  ASSERT_GE(r.errors.size(), 2u);
  EXPECT_LT(std::abs(r.errors[r.errors.size() - 2] - r.errors.back()), s.outer_tol);
}

TEST(AdmmCp, BeatsFactorizingThenRounding) {
  quant::CpSettings s;
  for (int bits : {3, 4, 5}) {
    s.bits = bits;
    double admm = 0, rounded = 0;
    for (uint64_t seed : {3, 4, 5}) {
      const auto x = low_rank(16, 12, 9, 8, 0.2, seed);
      s.seed = seed;
      admm += quant::admm_cp(x, 8, s).relative_error;
      auto plain = s;
      plain.bits = 32;
      rounded += quant::round_factors(x, quant::cp_als(x, 8, plain), bits).relative_error;
    }
    EXPECT_LT(admm, rounded) << bits << " bits";
  }
}
