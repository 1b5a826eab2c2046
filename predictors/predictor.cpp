#include "predictors/predictor.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "src/core/error.hpp"
#include "src/core/rng.hpp"

namespace qnas::predictors {

Method parse_method(const std::string& word) {
  if (word == "ridge") return Method::kRidge;
  if (word == "svr") return Method::kSvr;
  if (word == "auto") return Method::kAuto;
  QNAS_THROW("predictor '", word, "'; expected ridge, svr or auto");
}

std::string method_name(Method m) {
  switch (m) {
    case Method::kRidge: return "ridge";
    case Method::kSvr: return "svr";
    case Method::kAuto: return "auto";
  }
  return "?";
}

double mape(const Eigen::VectorXd& truth, const Eigen::VectorXd& pred) {
  QNAS_CHECK(truth.size() == pred.size() && truth.size() > 0, "mape: ", truth.size(), " labels, ", pred.size(),
             " predictions; expected as many, at least one");
  double sum = 0;
  for (Eigen::Index i = 0; i < truth.size(); ++i) {
    QNAS_CHECK(truth(i) != 0, "mape: label ", i, " is 0; MAPE needs non-zero labels");
    sum += std::abs((truth(i) - pred(i)) / truth(i));
  }
  return 100.0 * sum / double(truth.size());
}

double kendall_tau(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  QNAS_CHECK(a.size() == b.size(), "kendall_tau: ", a.size(), " vs ", b.size(), " values; expected as many");
  // O(n^2): a few hundred rows in practice.
  double concordant = 0, discordant = 0, ties_a = 0, ties_b = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    for (Eigen::Index j = i + 1; j < a.size(); ++j) {
      const double da = a(i) - a(j), db = b(i) - b(j);
      if (da == 0 && db == 0) continue;
      if (da == 0) ties_a += 1;
      else if (db == 0) ties_b += 1;
      else if ((da > 0) == (db > 0)) concordant += 1;
      else discordant += 1;
    }
  const double denom = std::sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b));
  return denom > 0 ? (concordant - discordant) / denom : 0.0;
}

std::vector<int> fold_assignment(int n, int folds, uint64_t seed) {
  std::vector<int> order(size_t(n), 0);
  std::iota(order.begin(), order.end(), 0);
  core::Rng rng(core::derive_seed(seed, "cv_folds"));
  for (int i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(core::uniform_index(rng, i + 1))]);
  std::vector<int> fold(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) fold[size_t(order[size_t(i)])] = i % folds;
  return fold;
}

namespace {

std::vector<double> default_alphas() {
  std::vector<double> a;
  for (int i = 1; i <= 100; ++i) a.push_back(0.1 * i);
  return a;
}

std::vector<double> default_cs() {
  std::vector<double> c;
  for (int i = 0; i < 10; ++i) c.push_back(std::pow(10.0, 2.0 * i / 9.0));
  return c;
}

struct Split {
  std::vector<int> train, test;
};

std::vector<Split> make_splits(int n, int folds, uint64_t seed) {
  const auto fold = fold_assignment(n, folds, seed);
  std::vector<Split> splits(static_cast<size_t>(folds));
  for (int i = 0; i < n; ++i)
    for (int f = 0; f < folds; ++f) (fold[size_t(i)] == f ? splits[size_t(f)].test : splits[size_t(f)].train).push_back(i);
  return splits;
}

// Out-of-fold predictions of every grid value: oof[g](i).
using OofTable = std::vector<Eigen::VectorXd>;

OofTable ridge_oof(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const std::vector<Split>& splits,
                   const std::vector<double>& alphas) {
  OofTable oof(alphas.size(), Eigen::VectorXd::Zero(y.size()));
  for (const auto& s : splits) {
    const auto models = fit_ridge_path(x(s.train, Eigen::all), y(s.train), alphas);
    const Eigen::MatrixXd xt = x(s.test, Eigen::all);
    for (size_t g = 0; g < alphas.size(); ++g) {
      const Eigen::VectorXd p = models[g].predict(xt);
      for (size_t i = 0; i < s.test.size(); ++i) oof[g](s.test[i]) = p(Eigen::Index(i));
    }
  }
  return oof;
}

OofTable svr_oof(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const std::vector<Split>& splits,
                 const std::vector<double>& cs) {
  OofTable oof(cs.size(), Eigen::VectorXd::Zero(y.size()));
  // Every (C, fold) fit is independent and writes its own entries: parallel
  // and deterministic.
  tbb::parallel_for(size_t(0), cs.size() * splits.size(), [&](size_t task) {
    const size_t g = task / splits.size();
    const auto& s = splits[task % splits.size()];
    SvrParams params;
    params.c = cs[g];
    const Eigen::VectorXd p = fit_svr(x(s.train, Eigen::all), y(s.train), params).predict(x(s.test, Eigen::all));
    for (size_t i = 0; i < s.test.size(); ++i) oof[g](s.test[i]) = p(Eigen::Index(i));
  });
  return oof;
}

// The grid value with the lowest MAPE (the first on ties).
size_t best_of(const Eigen::VectorXd& y, const OofTable& oof) {
  size_t best = 0;
  double best_mape = mape(y, oof[0]);
  for (size_t g = 1; g < oof.size(); ++g) {
    const double m = mape(y, oof[g]);
    if (m < best_mape) best = g, best_mape = m;
  }
  return best;
}

CvReport make_report(const std::string& model, double param, const Eigen::VectorXd& y, Eigen::VectorXd oof,
                     double y_scale, int folds) {
  CvReport r;
  r.model = model;
  r.param = param;
  r.mape = mape(y, oof);
  r.tau = kendall_tau(y, oof);
  r.rows = int(y.size());
  r.folds = folds;
  r.oof = oof * y_scale;
  return r;
}

}  // namespace

Predictor Predictor::fit(const Eigen::MatrixXd& x_raw, const Eigen::VectorXd& y_raw, Method method,
                         const FitOptions& opts) {
  const int n = int(x_raw.rows());
  QNAS_CHECK(x_raw.rows() == y_raw.size(), "predictor: ", x_raw.rows(), " feature rows for ", y_raw.size(), " labels");
  QNAS_CHECK(opts.folds >= 2, "predictor: ", opts.folds, "-fold cross-validation; expected at least 2 folds");
  QNAS_CHECK(n >= opts.folds, "predictor: ", n, " rows for ", opts.folds, "-fold cross-validation; expected at least ",
             opts.folds);
  QNAS_CHECK(y_raw.allFinite() && x_raw.allFinite(), "predictor: labels or features are not finite");
  Predictor p;
  p.x_min_ = x_raw.colwise().minCoeff();
  const Eigen::RowVectorXd range = x_raw.colwise().maxCoeff() - p.x_min_;
  p.x_scale_ = (range.array() > 0).select(range.array().inverse(), 1.0);
  const double ymax = y_raw.cwiseAbs().maxCoeff();
  p.y_scale_ = ymax > 0 ? std::pow(10.0, std::floor(std::log10(ymax))) : 1.0;
  const Eigen::MatrixXd x = (x_raw.rowwise() - p.x_min_).array().rowwise() * p.x_scale_.array();
  const Eigen::VectorXd y = y_raw / p.y_scale_;

  const auto splits = make_splits(n, opts.folds, opts.seed);
  const auto alphas = opts.alphas.empty() ? default_alphas() : opts.alphas;
  const auto cs = opts.cs.empty() ? default_cs() : opts.cs;
  std::vector<CvReport> candidates;
  if (method != Method::kSvr) {
    const auto oof = ridge_oof(x, y, splits, alphas);
    const size_t g = best_of(y, oof);
    candidates.push_back(make_report("ridge", alphas[g], y, oof[g], p.y_scale_, opts.folds));
  }
  if (method != Method::kRidge) {
    const auto oof = svr_oof(x, y, splits, cs);
    const size_t g = best_of(y, oof);
    candidates.push_back(make_report("svr", cs[g], y, oof[g], p.y_scale_, opts.folds));
  }
  p.report_ = *std::min_element(candidates.begin(), candidates.end(),
                                [](const CvReport& a, const CvReport& b) { return a.mape < b.mape; });
  if (p.report_.model == "ridge") {
    p.model_ = fit_ridge(x, y, p.report_.param);
  } else {
    SvrParams params;
    params.c = p.report_.param;
    p.model_ = fit_svr(x, y, params);
  }
  return p;
}

Eigen::VectorXd Predictor::predict(const Eigen::MatrixXd& x_raw) const {
  QNAS_CHECK(x_raw.cols() == x_min_.size(), "predictor: ", x_raw.cols(), " feature columns; fitted on ", x_min_.size());
  const Eigen::MatrixXd x = (x_raw.rowwise() - x_min_).array().rowwise() * x_scale_.array();
  const Eigen::VectorXd y = std::visit([&](const auto& m) { return Eigen::VectorXd(m.predict(x)); }, model_);
  return y * y_scale_;
}

}  // namespace qnas::predictors
