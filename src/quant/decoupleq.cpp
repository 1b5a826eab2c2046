#include "src/quant/decoupleq.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "src/core/error.hpp"

namespace qnas::quant {

void check_decoupleq_options(const DecoupleqOptions& o, int64_t cols, const std::string& where) {
  QNAS_CHECK(o.granularity != Granularity::kTensor, where, ": decoupleQ fits scales per channel or per group; "
             "expected granularity channel or group");
  GridSpec spec;
  spec.bits = o.bits;
  spec.granularity = o.granularity;
  spec.group_size = o.group_size;
  check_grid_spec(spec, cols, where);
  QNAS_CHECK(o.iterations >= 1, where, ": ", o.iterations, " iterations; expected at least 1");
  QNAS_CHECK(o.integer_step == "gptq" || o.integer_step == "pgd", where, ": integer step '", o.integer_step,
             "'; expected gptq or pgd");
  QNAS_CHECK(o.pgd_steps >= 0 && o.pgd_lr > 0, where, ": pgd steps ", o.pgd_steps, " at lr ", o.pgd_lr,
             "; expected steps >= 0 and lr > 0");
  QNAS_CHECK(o.clip_steps >= 1 && o.clip_steps <= 200, where, ": ", o.clip_steps,
             " clipping steps; expected 1..200 (ratios down to 1 - (steps-1)/200)");
}

at::Tensor row_losses(const at::Tensor& w, const at::Tensor& w_hat, const at::Tensor& h) {
  const int64_t b = h.size(0), rows = w.size(0), cols = w.size(1);
  const at::Tensor d = (w_hat.to(at::kDouble) - w.to(at::kDouble)).reshape({b, rows / b, cols});
  return at::bmm(d, h).mul(d).sum(-1).reshape({rows});
}

Grid least_squares_grid(const at::Tensor& w, const at::Tensor& codes, const at::Tensor& h, const Grid& like) {
  // Row i, group g: w~ = q s_g + z_g on the group's columns. With D the
  // columns' design (q masked to each group, then each group's indicator),
  // minimise (D t - w) H (D t - w)^T: (D^T H D) t = D^T H w, a 2G x 2G system.
  const int64_t b = h.size(0), rows = w.size(0), cols = w.size(1), r = rows / b;
  const int64_t gs = like.group_size, g = cols / gs;
  const at::Tensor q = codes.to(at::kDouble).reshape({b, r, g, gs});
  const at::Tensor hb = h.reshape({b, g, gs, g, gs});
  const at::Tensor hq = at::einsum("bgakc,brkc->brgak", {hb, q});   // (H q) split by both groups
  const at::Tensor m_ss = at::einsum("brga,brgak->brgk", {q, hq});  // q_g H_gk q_k
  const at::Tensor h_rowsum = hb.sum(-1);                             // H_gk 1, [b, g, gs, g]
  const at::Tensor m_sz = at::einsum("brga,bgak->brgk", {q, h_rowsum});
  const at::Tensor m_zz = h_rowsum.sum(2).unsqueeze(1).expand({b, r, g, g});
  const at::Tensor hw = at::bmm(w.to(at::kDouble).reshape({b, r, cols}), h).reshape({b, r, g, gs});
  at::Tensor m = at::cat({at::cat({m_ss, m_sz}, -1), at::cat({m_sz.transpose(-1, -2), m_zz}, -1)}, -2);
  const at::Tensor rhs = at::cat({(q * hw).sum(-1), hw.sum(-1)}, -1).unsqueeze(-1);
  // A group whose codes are all equal makes s and z collinear: a tiny ridge
  // keeps the system solvable (the row keeps its old grid unless this helps).
  const at::Tensor jitter = 1e-10 * m.diagonal(0, -2, -1).mean(-1, true).clamp_min(1e-300);
  m = m + at::diag_embed(jitter.expand({b, r, 2 * g}));
  const at::Tensor t = at::linalg_solve(m, rhs).squeeze(-1).reshape({rows, 2 * g});
  Grid out = like;
  out.scale = t.narrow(1, 0, g).contiguous();
  out.zero = t.narrow(1, g, g).contiguous();
  return out;
}

namespace {

GridSpec spec_of(const DecoupleqOptions& o) {
  GridSpec s;
  s.bits = o.bits;
  s.symmetric = false;
  s.granularity = o.granularity;
  s.group_size = o.group_size;
  return s;
}

// The current solution: codes, grid, and each row's loss.
struct Solution {
  at::Tensor codes;
  Grid grid;
  at::Tensor loss;
};

// Keeps the candidate on the rows where it lowers the loss; returns the
// fraction of rows that improved.
double accept_better_rows(Solution& cur, const at::Tensor& w, const at::Tensor& h, const at::Tensor& codes,
                          const Grid& grid) {
  const at::Tensor loss = row_losses(w, grid_dequantize(codes, grid), h);
  const at::Tensor better = loss < cur.loss;
  cur.codes = at::where(better.unsqueeze(1), codes, cur.codes);
  take_where(better, grid, cur.grid);
  cur.loss = at::where(better, loss, cur.loss);
  return better.to(at::kDouble).mean().item<double>();
}

// The min/max grid shrunk by the ratio with the lowest H-weighted loss, per row.
Grid clipped_grid(const at::Tensor& w, const at::Tensor& h, const DecoupleqOptions& o) {
  const GridSpec spec = spec_of(o);
  Grid best = fit_grid_clipped(w, spec, 1.0);
  at::Tensor best_loss = row_losses(w, rtn(w, best), h);
  for (int i = 1; i < o.clip_steps; ++i) {
    const Grid g = fit_grid_clipped(w, spec, 1.0 - i / 200.0);
    const at::Tensor loss = row_losses(w, rtn(w, g), h);
    const at::Tensor better = loss < best_loss;
    take_where(better, g, best);
    best_loss = at::where(better, loss, best_loss);
  }
  return best;
}

// Projected gradient descent on the box-relaxed weights (Adam, as the
// reference), then GPTQ-style column-wise rounding of the relaxed solution.
at::Tensor pgd_codes(const at::Tensor& w, const at::Tensor& h, const Grid& grid, const DecoupleqOptions& o) {
  const int64_t b = h.size(0), rows = w.size(0), cols = w.size(1);
  const at::Tensor s = expand_groups(grid.scale, grid.group_size), z = expand_groups(grid.zero, grid.group_size);
  const at::Tensor ends_a = double(grid.qmin()) * s + z, ends_b = double(grid.qmax()) * s + z;
  const at::Tensor lo = at::minimum(ends_a, ends_b), hi = at::maximum(ends_a, ends_b);
  at::Tensor x = at::clamp(w, lo, hi);
  at::Tensor m1 = at::zeros_like(x), m2 = at::zeros_like(x);
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-5;
  for (int t = 1; t <= o.pgd_steps; ++t) {
    const at::Tensor grad = at::bmm((x - w).reshape({b, rows / b, cols}), h).reshape({rows, cols});
    m1.lerp_(grad, 1 - beta1);
    m2.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const double step = o.pgd_lr / (1 - std::pow(beta1, t));
    const at::Tensor denom = (m2 / (1 - std::pow(beta2, t))).sqrt_().add_(eps);
    x = at::clamp(x - step * m1 / denom, lo, hi);
  }
  return gptq_codes(x, h, grid, o.damp, o.act_order, o.block_size);
}

at::Tensor integer_step(const at::Tensor& w, const at::Tensor& h, const Grid& grid, const DecoupleqOptions& o) {
  return o.integer_step == "pgd" ? pgd_codes(w, h, grid, o) : gptq_codes(w, h, grid, o.damp, o.act_order, o.block_size);
}

}  // namespace

DecoupleqResult decoupleq(const at::Tensor& w_in, const at::Tensor& h_in, const DecoupleqOptions& o) {
  QNAS_CHECK(w_in.dim() == 2 && h_in.dim() == 3 && h_in.size(1) == w_in.size(1) && h_in.size(0) > 0 &&
                 w_in.size(0) % h_in.size(0) == 0,
             "decoupleq: weight ", w_in.sizes(), " and H ", h_in.sizes(),
             "; expected [rows, cols] and [B, cols, cols] with B dividing rows");
  check_decoupleq_options(o, w_in.size(1), "decoupleq");
  const at::Tensor w = w_in.detach().to(at::kDouble);
  const at::Tensor h = damped_hessian(h_in, o.damp).first;  // the loss every step is judged by
  DecoupleqResult result;
  Solution cur;
  cur.grid = fit_grid(w, spec_of(o));
  cur.codes = grid_codes(w, cur.grid);
  cur.loss = row_losses(w, grid_dequantize(cur.codes, cur.grid), h);
  result.row_loss.push_back(cur.loss);
  accept_better_rows(cur, w, h, gptq_codes(w, h, cur.grid, o.damp, o.act_order, o.block_size), cur.grid);
  result.row_loss.push_back(cur.loss);
  for (int it = 0; it + 1 < o.iterations; ++it) {
    Grid grid = cur.grid;
    if (it == 0) {
      const Grid clipped = clipped_grid(w, h, o);
      grid = least_squares_grid(w, grid_codes(w, clipped), h, clipped);
    }
    const double int_rate = accept_better_rows(cur, w, h, integer_step(w, h, grid, o), grid);
    result.row_loss.push_back(cur.loss);
    if (int_rate < 1e-4) break;
    const double float_rate = accept_better_rows(cur, w, h, cur.codes, least_squares_grid(w, cur.codes, h, cur.grid));
    result.row_loss.push_back(cur.loss);
    if (float_rate < 1e-4) break;
  }
  result.weight = {cur.codes, cur.grid};
  return result;
}

}  // namespace qnas::quant
