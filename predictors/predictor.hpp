#pragma once
// A predictor of one objective from features, chosen and tuned by k-fold
// cross-validation as DyNAS-T's LINAS does:
//   ridge: alpha over 0.1, 0.2, ..., 10;
//   svr:   RBF, gamma = 1 / n_features, epsilon 0, C over a log grid 1..100;
//   auto:  both, keeping the lower CV MAPE.
// Features are min-max scaled per column (one-hot columns are unchanged) and
// labels divided by a power of ten (DyNAS-T) before fitting. Each fit reports
// the CV MAPE and Kendall's tau of the out-of-fold predictions.

#include <Eigen/Dense>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "predictors/regressors.hpp"

namespace qnas::predictors {

enum class Method { kRidge, kSvr, kAuto };

/// "ridge" | "svr" | "auto"; throws naming the accepted words.
Method parse_method(const std::string& word);
std::string method_name(Method m);

struct FitOptions {
  int folds = 5;
  uint64_t seed = 0;           // fold assignment
  std::vector<double> alphas;  // empty: 0.1..10 step 0.1
  std::vector<double> cs;      // empty: 10 values log-spaced over [1, 100]
};

struct CvReport {
  std::string model;  // ridge | svr
  double param = 0;   // alpha or C chosen
  double mape = 0;    // percent, out-of-fold
  double tau = 0;     // Kendall tau-b of out-of-fold predictions vs labels
  int rows = 0, folds = 0;
  Eigen::VectorXd oof;  // out-of-fold predictions, in label units
};

class Predictor {
 public:
  /// Tunes, cross-validates and refits on all rows.
  static Predictor fit(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, Method method,
                       const FitOptions& opts = {});

  Eigen::VectorXd predict(const Eigen::MatrixXd& x) const;
  const CvReport& report() const { return report_; }

 private:
  Eigen::RowVectorXd x_min_, x_scale_;
  double y_scale_ = 1;
  std::variant<RidgeModel, SvrModel> model_;
  CvReport report_;
};

// --- Metrics -------------------------------------------------------------------

/// Mean absolute percentage error, in percent (labels must be non-zero).
double mape(const Eigen::VectorXd& truth, const Eigen::VectorXd& pred);
/// Kendall's tau-b (ties counted as in scipy.stats.kendalltau).
double kendall_tau(const Eigen::VectorXd& a, const Eigen::VectorXd& b);

/// Fold of each of `n` rows (0..folds-1): a seeded shuffle dealt round-robin.
std::vector<int> fold_assignment(int n, int folds, uint64_t seed);

}  // namespace qnas::predictors
