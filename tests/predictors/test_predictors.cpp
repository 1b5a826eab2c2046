// Predictors: ridge against the normal equations, SVR on a known function,
// model selection by CV, Kendall's tau by hand, one-hot masking.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "predictors/features.hpp"
#include "predictors/predictor.hpp"
#include "predictors/regressors.hpp"
#include "src/core/error.hpp"

namespace qp = qnas::predictors;

namespace {

Eigen::MatrixXd random_matrix(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0, 1);
  Eigen::MatrixXd x(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) x(i, j) = n(rng);
  return x;
}

}  // namespace

TEST(Ridge, EqualsNormalEquationSolution) {
  const Eigen::MatrixXd x = random_matrix(40, 6, 1);
  const Eigen::VectorXd y = x * Eigen::VectorXd::LinSpaced(6, -1, 2) + Eigen::VectorXd::Constant(40, 3.0) +
                            0.1 * random_matrix(40, 1, 2).col(0);
  const double alpha = 0.7;
  // Augmented system [X 1] with the intercept unpenalised.
  Eigen::MatrixXd a(40, 7);
  a << x, Eigen::VectorXd::Ones(40);
  Eigen::MatrixXd lhs = a.transpose() * a;
  for (int j = 0; j < 6; ++j) lhs(j, j) += alpha;
  const Eigen::VectorXd sol = lhs.ldlt().solve(a.transpose() * y);
  const auto m = qp::fit_ridge(x, y, alpha);
  for (int j = 0; j < 6; ++j) EXPECT_NEAR(m.w(j), sol(j), 1e-9);
  EXPECT_NEAR(m.b, sol(6), 1e-9);
  // The eigendecomposition path gives the same models.
  const auto path = qp::fit_ridge_path(x, y, {0.1, alpha, 5.0});
  EXPECT_LT((path[1].w - m.w).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_NEAR(path[1].b, m.b, 1e-9);
  EXPECT_LT((path[0].predict(x) - qp::fit_ridge(x, y, 0.1).predict(x)).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(Svr, FitsAKnownOneDimensionalFunction) {
  const int n = 80;
  Eigen::MatrixXd x(n, 1);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    x(i, 0) = 3.0 * i / (n - 1);
    y(i) = 2.0 + std::sin(2.0 * x(i, 0));
  }
  qp::SvrParams params;
  params.c = 100;
  params.gamma = 2.0;
  params.epsilon = 0.001;
  const auto m = qp::fit_svr(x, y, params);
  Eigen::MatrixXd xt(7, 1);
  xt << 0.1, 0.55, 1.0, 1.47, 2.03, 2.5, 2.9;
  const Eigen::VectorXd pred = m.predict(xt);
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(pred(i), 2.0 + std::sin(2.0 * xt(i, 0)), 0.02) << "x=" << xt(i, 0);
}

TEST(Svr, BatchPredictionEqualsTheKernelSumOnSparseAndDenseRows) {
  // One-hot rows (the predictors' features) and dense rows with some zeros.
  std::mt19937_64 rng(11);
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(60, 12);
  for (int i = 0; i < 60; ++i)
    for (int v = 0; v < 4; ++v) x(i, 3 * v + int(rng() % 3)) = 1.0;
  x.bottomRows(20) = random_matrix(20, 12, 4);
  x(50, 3) = x(51, 0) = 0.0;
  const Eigen::VectorXd y = x.rowwise().sum() + 0.3 * x.col(2);
  qp::SvrParams params;
  params.c = 10;
  const auto m = qp::fit_svr(x, y, params);
  const Eigen::VectorXd pred = m.predict(x);
  for (int i = 0; i < 60; ++i) {
    double f = -m.rho;
    for (int s = 0; s < m.support.rows(); ++s)
      f += m.coef(s) * std::exp(-m.gamma * (x.row(i) - m.support.row(s)).squaredNorm());
    EXPECT_NEAR(pred(i), f, 1e-9) << "row " << i;
  }
}

TEST(Predictor, CrossValidationPicksTheLowerErrorModel) {
  // Additive labels over 40 binary features from 60 noisy rows: ridge wins.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 1);
  Eigen::MatrixXd xb(60, 40);
  for (int i = 0; i < 60; ++i)
    for (int j = 0; j < 40; ++j) xb(i, j) = double(rng() % 2);
  const Eigen::VectorXd w = random_matrix(40, 1, 9).col(0);
  Eigen::VectorXd additive = (xb * w).array() + 50.0;
  for (int i = 0; i < 60; ++i) additive(i) += 0.3 * noise(rng);
  // A sharp bump of one feature: SVR wins.
  Eigen::MatrixXd x1(120, 1);
  Eigen::VectorXd bump(120);
  for (int i = 0; i < 120; ++i) {
    x1(i, 0) = -3.0 + 6.0 * ((i * 37) % 120) / 119.0;
    bump(i) = 1.0 + 4.0 * std::exp(-x1(i, 0) * x1(i, 0));
  }
  struct Case {
    const Eigen::MatrixXd& x;
    const Eigen::VectorXd& y;
    const char* winner;
  };
  for (const Case& c : {Case{xb, additive, "ridge"}, Case{x1, bump, "svr"}}) {
    const auto chosen = qp::Predictor::fit(c.x, c.y, qp::Method::kAuto);
    const auto ridge = qp::Predictor::fit(c.x, c.y, qp::Method::kRidge);
    const auto svr = qp::Predictor::fit(c.x, c.y, qp::Method::kSvr);
    EXPECT_EQ(chosen.report().model, c.winner);
    EXPECT_DOUBLE_EQ(chosen.report().mape, std::min(ridge.report().mape, svr.report().mape));
    EXPECT_NE(ridge.report().mape, svr.report().mape);
    // Out-of-fold predictions are reported in label units.
    EXPECT_NEAR(qp::mape(c.y, chosen.report().oof), chosen.report().mape, 1e-9);
    EXPECT_GT(chosen.report().tau, 0.85);
    // The refit model predicts the training rows closely.
    EXPECT_LT(qp::mape(c.y, chosen.predict(c.x)), chosen.report().mape + 1.0);
  }
}

TEST(Predictor, RefusesTooFewRowsForTheFolds) {
  const Eigen::MatrixXd x = random_matrix(3, 2, 4);
  const Eigen::VectorXd y = Eigen::VectorXd::Ones(3);
  qp::FitOptions five;
  five.folds = 5;
  EXPECT_THROW(qp::Predictor::fit(x, y, qp::Method::kRidge, five), qnas::Error);
  EXPECT_THROW(qp::parse_method("xgb"), qnas::Error);
}

TEST(Metrics, KendallTauByHand) {
  Eigen::VectorXd a(5), b(5), c(4), d(4);
  a << 1, 2, 3, 4, 5;
  b << 3, 4, 1, 2, 5;  // 6 concordant, 4 discordant pairs
  EXPECT_NEAR(qp::kendall_tau(a, b), 0.2, 1e-12);
  EXPECT_NEAR(qp::kendall_tau(a, a), 1.0, 1e-12);
  EXPECT_NEAR(qp::kendall_tau(a, -a), -1.0, 1e-12);
  c << 1, 2, 2, 3;
  d << 1, 3, 2, 2;  // C=3, D=1, one tie in each: tau-b = 2 / sqrt(5*5)
  EXPECT_NEAR(qp::kendall_tau(c, d), 0.4, 1e-12);
  Eigen::VectorXd t(2), p(2);
  t << 100, 50;
  p << 110, 40;
  EXPECT_NEAR(qp::mape(t, p), 15.0, 1e-12);
}

TEST(Features, OneHotMasksInactiveVariables) {
  const qp::OneHotEncoder enc({2, 3, 1});
  EXPECT_EQ(enc.width(), 6);
  const auto x = enc.encode({{1, 2, 0}, {0, qp::kInactive, 0}});
  Eigen::MatrixXd expected(2, 6);
  expected << 0, 1, 0, 0, 1, 1,
              1, 0, 0, 0, 0, 1;
  EXPECT_EQ(x, expected);
  EXPECT_THROW(enc.encode({{2, 0, 0}}), qnas::Error);
  EXPECT_THROW(enc.encode({{0, 0}}), qnas::Error);
}

TEST(Folds, BalancedAndSeeded) {
  const auto f = qp::fold_assignment(23, 5, 7);
  std::vector<int> count(5, 0);
  for (int x : f) ++count[size_t(x)];
  for (int c : count) EXPECT_TRUE(c == 4 || c == 5);
  EXPECT_EQ(f, qp::fold_assignment(23, 5, 7));
  EXPECT_NE(f, qp::fold_assignment(23, 5, 8));
}
