#pragma once
// The two regressors LINAS's predictors choose between (DyNAS-T's
// dynamic_predictor): ridge regression with an intercept, solved in closed
// form, and epsilon-SVR with an RBF kernel trained by libsvm (the library
// scikit-learn's SVR wraps) and evaluated with Eigen for batch prediction.

#include <Eigen/Dense>

namespace qnas::predictors {

/// y ~ x w + b, minimising |y - x w - b|^2 + alpha |w|^2 (b not penalised).
struct RidgeModel {
  Eigen::VectorXd w;
  double b = 0;
  Eigen::VectorXd predict(const Eigen::MatrixXd& x) const;
};

RidgeModel fit_ridge(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, double alpha);

/// Ridge for many alphas at the price of one eigendecomposition: the models
/// equal fit_ridge(x, y, alpha) for each alpha.
std::vector<RidgeModel> fit_ridge_path(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                       const std::vector<double>& alphas);

/// f(x) = sum_i coef_i exp(-gamma |x - sv_i|^2) - rho.
struct SvrModel {
  Eigen::MatrixXd support;   // one support vector per row
  Eigen::VectorXd coef;
  Eigen::VectorXd support_sq;  // |sv_i|^2
  double rho = 0, gamma = 1;
  Eigen::VectorXd predict(const Eigen::MatrixXd& x) const;
};

struct SvrParams {
  double c = 1;
  double gamma = 0;      // 0 = 1 / n_features (DyNAS-T)
  double epsilon = 0;    // width of the insensitive tube, in label units
  double tolerance = 1e-3;
};

SvrModel fit_svr(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const SvrParams& params);

}  // namespace qnas::predictors
