#include "src/quant/admm_cp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "src/core/error.hpp"

namespace qnas::quant {

namespace {

using Eigen::MatrixXd;

// Khatri-Rao product: row q + rows(Q) * p holds P(p, :) .* Q(q, :).
MatrixXd khatri_rao(const MatrixXd& p, const MatrixXd& q) {
  MatrixXd out(p.rows() * q.rows(), p.cols());
  for (Eigen::Index a = 0; a < p.rows(); ++a)
    out.middleRows(a * q.rows(), q.rows()) = q.array().rowwise() * p.row(a).array();
  return out;
}

// The three unfoldings of x: X_(1) (I x JK), X_(2) (J x IK, column i + I k),
// X_(3) (K x IJ, column i + I j).
struct Unfoldings {
  MatrixXd x1, x2, x3;
  double norm2 = 0;
};

Unfoldings unfold(const Tensor3& x) {
  QNAS_CHECK(x.i > 0 && x.j > 0 && x.k > 0 && x.x1.rows() == x.i && x.x1.cols() == x.j * x.k,
             "cp: tensor ", x.i, "x", x.j, "x", x.k, " with a ", x.x1.rows(), "x", x.x1.cols(),
             " mode-1 unfolding; expected I x (J*K)");
  Unfoldings u{x.x1, MatrixXd(x.j, x.i * x.k), MatrixXd(x.k, x.i * x.j), x.x1.squaredNorm()};
  for (int64_t a = 0; a < x.i; ++a)
    for (int64_t b = 0; b < x.j; ++b)
      for (int64_t c = 0; c < x.k; ++c) {
        const double v = x.at(a, b, c);
        u.x2(b, a + x.i * c) = v;
        u.x3(c, a + x.i * b) = v;
      }
  return u;
}

// The normal equations of one factor given the other two: G and F = MTTKRP.
struct Normal {
  MatrixXd g, f;
};

Normal normal_a(const Unfoldings& u, const CpFactors& f) {
  return {(f.c.transpose() * f.c).cwiseProduct(f.b.transpose() * f.b), u.x1 * khatri_rao(f.c, f.b)};
}
Normal normal_b(const Unfoldings& u, const CpFactors& f) {
  return {(f.c.transpose() * f.c).cwiseProduct(f.a.transpose() * f.a), u.x2 * khatri_rao(f.c, f.a)};
}
Normal normal_c(const Unfoldings& u, const CpFactors& f) {
  return {(f.b.transpose() * f.b).cwiseProduct(f.a.transpose() * f.a), u.x3 * khatri_rao(f.b, f.a)};
}

// The unconstrained update F G^-1 (a tiny ridge keeps rank-deficient G solvable).
MatrixXd least_squares(const Normal& n) {
  const double ridge = 1e-12 * std::max(1.0, n.g.trace());
  const MatrixXd g = n.g + ridge * MatrixXd::Identity(n.g.rows(), n.g.cols());
  return g.llt().solve(n.f.transpose()).transpose();
}

double relative_error(const Unfoldings& u, const CpFactors& f) {
  return std::sqrt((u.x1 - f.reconstruct()).squaredNorm() / std::max(u.norm2, 1e-300));
}

// Equal column norms across the three factors (the model is unchanged):
// what a per-tensor grid of each factor needs.
void balance(CpFactors& f) {
  for (Eigen::Index r = 0; r < f.a.cols(); ++r) {
    const double na = f.a.col(r).norm(), nb = f.b.col(r).norm(), nc = f.c.col(r).norm();
    if (na == 0 || nb == 0 || nc == 0) continue;
    const double target = std::cbrt(na * nb * nc);
    f.a.col(r) *= target / na;
    f.b.col(r) *= target / nb;
    f.c.col(r) *= target / nc;
  }
}

CpFactors random_factors(const Tensor3& x, int64_t rank, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  const auto draw = [&](int64_t rows) {
    MatrixXd m(rows, rank);
    for (Eigen::Index c = 0; c < m.cols(); ++c)
      for (Eigen::Index r = 0; r < m.rows(); ++r) m(r, c) = normal(rng);
    return m;
  };
  return {draw(x.i), draw(x.j), draw(x.k)};
}

void als_sweep(const Unfoldings& u, CpFactors& f) {
  f.a = least_squares(normal_a(u, f));
  f.b = least_squares(normal_b(u, f));
  f.c = least_squares(normal_c(u, f));
}

// One factor's ADMM state, warm-started across outer iterations.
struct FactorAdmm {
  MatrixXd u;       // scaled dual variable
  FactorGrid grid;
};

// The ADMM update of one factor `h` (constrained to state.grid) given its normal equations.
void admm_update(const Normal& n, MatrixXd& h, FactorAdmm& state, int bits, const CpSettings& s, AdmmTrace* trace) {
  const Eigen::Index rank = n.g.rows();
  double rho = std::max(n.g.trace() / double(rank), 1e-12);
  Eigen::LLT<MatrixXd> chol(n.g + rho * MatrixXd::Identity(rank, rank));
  if (state.u.size() == 0) state.u = MatrixXd::Zero(h.rows(), h.cols());
  state.grid = bits >= 32 ? FactorGrid{} : fit_factor_grid(least_squares(n), bits);
  for (int it = 0; it < s.max_inner; ++it) {
    // On a grid the problem is not convex and ADMM may cycle between grid
    // points; past `rho_patience` iterations rho grows, which pulls H~ onto H.
    if (bits < 32 && it >= s.rho_patience && (it - s.rho_patience) % 10 == 0) {
      state.u *= 1.0 / s.rho_growth;  // U is scaled by 1/rho
      rho *= s.rho_growth;
      chol.compute(n.g + rho * MatrixXd::Identity(rank, rank));
    }
    const MatrixXd h_tilde = chol.solve((n.f + rho * (h + state.u)).transpose()).transpose();
    const MatrixXd previous = h;
    h = bits >= 32 ? MatrixXd(h_tilde - state.u) : project(h_tilde - state.u, state.grid);
    state.u += h - h_tilde;
    const double primal = (h - h_tilde).squaredNorm() / std::max(h.squaredNorm(), 1e-300);
    // Without a grid U stays 0: the change of H is then measured against H itself.
    const double u2 = state.u.squaredNorm();
    const double dual = (h - previous).squaredNorm() / std::max(u2 > 0 ? u2 : h.squaredNorm(), 1e-300);
    if (trace) {
      trace->primal.push_back(primal);
      trace->dual.push_back(dual);
    }
    if (primal < s.inner_tol && dual < s.inner_tol) break;
  }
}

CpResult finish(const Unfoldings& u, CpFactors f, std::vector<double> errors, int outer) {
  CpResult r;
  r.relative_error = relative_error(u, f);
  r.factors = std::move(f);
  r.errors = std::move(errors);
  r.outer_iterations = outer;
  return r;
}

void check_rank(int64_t rank) { QNAS_CHECK(rank >= 1, "cp: rank ", rank, "; expected at least 1"); }

}  // namespace

MatrixXd CpFactors::reconstruct() const { return a * khatri_rao(c, b).transpose(); }

FactorGrid fit_factor_grid(const MatrixXd& m, int bits) {
  QNAS_CHECK(bits >= 2 && bits <= 8, "cp: factor bits ", bits, "; expected 2..8");
  FactorGrid best{bits, 0};
  const double max_abs = m.cwiseAbs().maxCoeff();
  if (max_abs == 0) return {bits, 1.0};
  double best_error = std::numeric_limits<double>::infinity();
  constexpr int kCandidates = 200;
  for (int c = 0; c < kCandidates; ++c) {
    const double ratio = 0.2 + 1.0 * c / (kCandidates - 1);
    const FactorGrid g{bits, ratio * max_abs / double(best.qmax())};
    const double error = (project(m, g) - m).squaredNorm();
    if (error < best_error) best_error = error, best = g;
  }
  return best;
}

MatrixXd project(const MatrixXd& m, const FactorGrid& grid) {
  if (grid.bits >= 32) return m;
  const double q = double(grid.qmax());
  return m.unaryExpr([&](double v) { return std::clamp(std::nearbyint(v / grid.step), -q, q) * grid.step; });
}

CpResult cp_als(const Tensor3& x, int64_t rank, const CpSettings& s) {
  check_rank(rank);
  const auto u = unfold(x);
  auto f = random_factors(x, rank, s.seed);
  std::vector<double> errors;
  int outer = 0;
  for (; outer < s.max_outer; ++outer) {
    als_sweep(u, f);
    errors.push_back(relative_error(u, f));
    if (errors.size() > 1 && std::abs(errors[errors.size() - 2] - errors.back()) < s.outer_tol) break;
  }
  balance(f);
  return finish(u, std::move(f), std::move(errors), outer + 1);
}

CpResult admm_cp(const Tensor3& x, int64_t rank, const CpSettings& s) {
  check_rank(rank);
  const auto u = unfold(x);
  auto f = cp_als(x, rank, s).factors;  // converged and balanced: the start the rounding baseline also has
  FactorAdmm sa, sb, sc;
  AdmmTrace first;
  std::vector<double> errors;
  int outer = 0;
  for (; outer < s.max_outer; ++outer) {
    admm_update(normal_a(u, f), f.a, sa, s.bits, s, outer == 0 ? &first : nullptr);
    admm_update(normal_b(u, f), f.b, sb, s.bits, s, nullptr);
    admm_update(normal_c(u, f), f.c, sc, s.bits, s, nullptr);
    errors.push_back(relative_error(u, f));
    if (errors.size() > 1 && std::abs(errors[errors.size() - 2] - errors.back()) < s.outer_tol) break;
  }
  auto r = finish(u, std::move(f), std::move(errors), outer + 1);
  r.grid_a = sa.grid, r.grid_b = sb.grid, r.grid_c = sc.grid;
  r.first_update = std::move(first);
  return r;
}

CpResult round_factors(const Tensor3& x, CpResult r, int bits) {
  r.grid_a = fit_factor_grid(r.factors.a, bits);
  r.grid_b = fit_factor_grid(r.factors.b, bits);
  r.grid_c = fit_factor_grid(r.factors.c, bits);
  r.factors.a = project(r.factors.a, r.grid_a);
  r.factors.b = project(r.factors.b, r.grid_b);
  r.factors.c = project(r.factors.c, r.grid_c);
  r.relative_error = relative_error(unfold(x), r.factors);
  return r;
}

}  // namespace qnas::quant
