#include "predictors/regressors.hpp"

#include <libsvm/svm.h>

#include <memory>
#include <vector>

#include "src/core/error.hpp"

namespace qnas::predictors {

namespace {

void check_xy(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const char* what) {
  QNAS_CHECK(x.rows() == y.size() && x.rows() >= 1, what, ": ", x.rows(), " feature rows for ", y.size(),
             " labels; expected as many, at least one");
}

// Centred data: ridge's intercept is the label mean minus the feature means
// times w, so the penalty leaves it alone.
struct Centred {
  Eigen::RowVectorXd x_mean;
  double y_mean = 0;
  Eigen::MatrixXd x;
  Eigen::VectorXd y;
};

Centred centre(const Eigen::MatrixXd& x, const Eigen::VectorXd& y) {
  Centred c;
  c.x_mean = x.colwise().mean();
  c.y_mean = y.mean();
  c.x = x.rowwise() - c.x_mean;
  c.y = y.array() - c.y_mean;
  return c;
}

RidgeModel with_intercept(const Centred& c, Eigen::VectorXd w) {
  RidgeModel m;
  m.b = c.y_mean - c.x_mean.dot(w);
  m.w = std::move(w);
  return m;
}

}  // namespace

Eigen::VectorXd RidgeModel::predict(const Eigen::MatrixXd& x) const {
  return (x * w).array() + b;
}

RidgeModel fit_ridge(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, double alpha) {
  check_xy(x, y, "ridge");
  QNAS_CHECK(alpha > 0, "ridge: alpha ", alpha, "; expected > 0");
  const Centred c = centre(x, y);
  Eigen::MatrixXd a = c.x.transpose() * c.x;
  a.diagonal().array() += alpha;
  return with_intercept(c, a.ldlt().solve(c.x.transpose() * c.y));
}

std::vector<RidgeModel> fit_ridge_path(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                       const std::vector<double>& alphas) {
  check_xy(x, y, "ridge");
  const Centred c = centre(x, y);
  // X'X = V diag(d) V'  =>  w(alpha) = V diag(1 / (d + alpha)) V' X'y
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c.x.transpose() * c.x);
  const Eigen::VectorXd proj = eig.eigenvectors().transpose() * (c.x.transpose() * c.y);
  const Eigen::VectorXd d = eig.eigenvalues().cwiseMax(0.0);
  std::vector<RidgeModel> out;
  for (double alpha : alphas) {
    QNAS_CHECK(alpha > 0, "ridge: alpha ", alpha, "; expected > 0");
    out.push_back(with_intercept(c, eig.eigenvectors() * (proj.array() / (d.array() + alpha)).matrix()));
  }
  return out;
}

Eigen::VectorXd SvrModel::predict(const Eigen::MatrixXd& x) const {
  // |x - s|^2 = |x|^2 + |s|^2 - 2 x.s. LINAS's features are one-hot, so x.s
  // is a sum of a few support columns: gathering them is cheaper than a
  // dense product over every column.
  QNAS_CHECK(x.cols() == support.cols(), "svr: ", x.cols(), " feature columns; fitted on ", support.cols());
  Eigen::VectorXd out(x.rows());
  Eigen::VectorXd dots(support.rows());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    dots.setZero();
    double x_sq = 0;
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double v = x(r, j);
      if (v == 0) continue;
      dots.noalias() += v * support.col(j);
      x_sq += v * v;
    }
    const Eigen::ArrayXd d2 = ((x_sq + support_sq.array()) - 2.0 * dots.array()).max(0.0);
    out(r) = ((-gamma * d2).exp() * coef.array()).sum() - rho;
  }
  return out;
}

namespace {

void quiet(const char*) {}

struct SvmModelDeleter {
  void operator()(svm_model* m) const { svm_free_and_destroy_model(&m); }
};

}  // namespace

SvrModel fit_svr(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const SvrParams& params) {
  check_xy(x, y, "svr");
  QNAS_CHECK(params.c > 0, "svr: C ", params.c, "; expected > 0");
  svm_set_print_string_function(&quiet);
  const int n = int(x.rows()), p = int(x.cols());
  // Sparse rows in libsvm's layout (1-based indices, -1 terminated).
  std::vector<std::vector<svm_node>> rows(static_cast<size_t>(n));
  std::vector<svm_node*> row_ptrs(static_cast<size_t>(n));
  std::vector<double> labels(y.data(), y.data() + n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < p; ++j)
      if (x(i, j) != 0) rows[size_t(i)].push_back({j + 1, x(i, j)});
    rows[size_t(i)].push_back({-1, 0});
    row_ptrs[size_t(i)] = rows[size_t(i)].data();
  }
  svm_problem prob{n, labels.data(), row_ptrs.data()};
  svm_parameter param{};
  param.svm_type = EPSILON_SVR;
  param.kernel_type = RBF;
  param.gamma = params.gamma > 0 ? params.gamma : 1.0 / std::max(1, p);
  param.C = params.c;
  param.p = params.epsilon;
  param.eps = params.tolerance;
  param.cache_size = 64;
  param.shrinking = 1;
  if (const char* err = svm_check_parameter(&prob, &param)) QNAS_THROW("svr: libsvm refused the parameters: ", err);
  const std::unique_ptr<svm_model, SvmModelDeleter> model(svm_train(&prob, &param));

  SvrModel m;
  m.gamma = param.gamma;
  m.rho = model->rho[0];
  m.support = Eigen::MatrixXd::Zero(model->l, p);
  m.coef.resize(model->l);
  for (int i = 0; i < model->l; ++i) {
    m.coef(i) = model->sv_coef[0][i];
    for (const svm_node* node = model->SV[i]; node->index != -1; ++node) m.support(i, node->index - 1) = node->value;
  }
  m.support_sq = m.support.rowwise().squaredNorm();
  return m;
}

}  // namespace qnas::predictors
