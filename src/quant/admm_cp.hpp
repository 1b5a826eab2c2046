#pragma once
// Quantization-aware CP factorization by AO-ADMM (REFERENCES.md §5;
// arXiv 2308.04595), and its baseline "CP-ALS, then round the factors".
//
// A conv weight [Cout, Cin, kh, kw] is a 3-way tensor X of shape
// I x J x K = Cout x Cin x (kh*kw); its rank-R CP model is
//   X(i,j,k) ~ sum_r A(i,r) B(j,r) C(k,r),
// deployed as a 1x1 conv Cin -> R (B^T), a depthwise kh x kw conv on R
// channels (C), and a 1x1 conv R -> Cout (A). A linear layer (K = 1) has two
// factors: the constant C is folded into A.
//
// AO-ADMM updates one factor at a time with the others fixed. For A:
//   G = (C^T C) * (B^T B) (Hadamard), F = X_(1) (C kr B) (MTTKRP),
//   rho = trace(G) / R, L = chol(G + rho I) (factored once per update),
//   repeat  H~ = (G + rho I)^-1 (F + rho (H + U))^T
//           H  = Q(H~^T - U)          projection onto the factor's grid
//           U  = U + H - H~^T
//   until the primal residual |H - H~^T|^2 / |H|^2 and the dual residual
//   |H - H_prev|^2 / |U|^2 are both below `inner_tol`, or `max_inner`
//   iterations. The outer loop stops when the relative error
//   |X - [[A, B, C]]| / |X| changes by less than `outer_tol`.
// On a grid the problem is not convex and the iteration can cycle between
// grid points; after `rho_patience` inner iterations rho grows by
// `rho_growth` every 10 iterations (the Cholesky factor is recomputed then),
// which forces H~ onto H (a common ADMM heuristic, not in the paper).
// Q is a per-tensor symmetric grid of `bits` bits (codes in
// [-(2^(b-1)-1), 2^(b-1)-1]) whose step is chosen, at the start of each
// factor update, by the squared error over 200 clipping ratios in
// [0.2, 1.2] of max|x|. With bits >= 32 Q is the identity and the iteration
// converges to the CP-ALS update.
//
// Eigen only; no LibTorch here.

#include <Eigen/Dense>

#include <cstdint>
#include <vector>

#include "src/quant/policy.hpp"  // cp_rank

namespace qnas::quant {

/// A 3-way tensor stored as its mode-1 unfolding X_(1): I x (J*K), column
/// j + J*k (Kolda & Bader's convention).
struct Tensor3 {
  int64_t i = 0, j = 0, k = 0;
  Eigen::MatrixXd x1;
  double at(int64_t a, int64_t b, int64_t c) const { return x1(a, b + j * c); }
};

/// Factor matrices A (I x R), B (J x R), C (K x R).
struct CpFactors {
  Eigen::MatrixXd a, b, c;
  int64_t rank() const { return a.cols(); }
  /// [[A, B, C]] as a mode-1 unfolding.
  Eigen::MatrixXd reconstruct() const;
};

/// A factor on a per-tensor symmetric grid: codes * step.
struct FactorGrid {
  int bits = 32;   // >= 32: not quantized
  double step = 0;
  int64_t qmax() const { return (int64_t(1) << (bits - 1)) - 1; }
};

struct CpSettings {
  int bits = 32;              // factor bits (>= 32: unconstrained)
  int max_outer = 200;
  double outer_tol = 1e-5;    // stop when the relative error changes less
  int max_inner = 1000;
  double inner_tol = 1e-8;    // primal and dual residuals
  int rho_patience = 50;      // inner iterations at rho = trace(G)/R before it grows
  double rho_growth = 1.1;    // then every 10 iterations (quantized factors only)
  uint64_t seed = 0;
};

/// What one factor update did, for tests and diagnostics.
struct AdmmTrace {
  std::vector<double> primal, dual;  // per inner iteration
};

struct CpResult {
  CpFactors factors;
  FactorGrid grid_a, grid_b, grid_c;  // the grids the factors lie on (bits >= 32: none)
  double relative_error = 0;          // |X - [[A, B, C]]| / |X|
  int outer_iterations = 0;
  std::vector<double> errors;         // relative error after each outer iteration
  AdmmTrace first_update;             // the inner iterations of the first ADMM update of A
};

/// CP-ALS (unconstrained least squares per factor) from a seeded random start,
/// columns balanced to equal norms across the three factors.
CpResult cp_als(const Tensor3& x, int64_t rank, const CpSettings& settings);

/// AO-ADMM with every factor on its `settings.bits` grid, started from the
/// converged CP-ALS factors (cp_als with the same settings).
CpResult admm_cp(const Tensor3& x, int64_t rank, const CpSettings& settings);

/// The baseline: each factor of an unconstrained result rounded to its own
/// per-tensor grid of `bits` (the same MSE-chosen clipping).
CpResult round_factors(const Tensor3& x, CpResult unconstrained, int bits);

/// Per-tensor symmetric grid of `bits` for m: the step whose clipping ratio
/// (200 candidates in [0.2, 1.2] of max|m|) gives the least squared error.
FactorGrid fit_factor_grid(const Eigen::MatrixXd& m, int bits);

/// m rounded to the grid (codes clamped to +-qmax) times the step.
Eigen::MatrixXd project(const Eigen::MatrixXd& m, const FactorGrid& grid);

}  // namespace qnas::quant
