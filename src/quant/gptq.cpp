#include "src/quant/gptq.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <functional>

#include "src/core/error.hpp"

namespace qnas::quant {

std::pair<at::Tensor, at::Tensor> damped_hessian(const at::Tensor& h, double damp) {
  QNAS_CHECK(h.dim() == 3 && h.size(1) == h.size(2), "hessian of shape ", h.sizes(), "; expected [B, cols, cols]");
  QNAS_CHECK(damp >= 0, "damping ", damp, "; expected >= 0");
  at::Tensor out = h.to(at::kDouble).clone();
  at::Tensor diag = out.diagonal(0, 1, 2);  // a view: writes go to `out`
  const at::Tensor dead = diag == 0;
  diag.masked_fill_(dead, 1.0);
  diag.add_(damp * diag.mean(-1, /*keepdim=*/true));
  return {out, dead};
}

namespace {

// One GPTQ problem in processing order: weights [b, r, cols] (dead columns
// zeroed), the upper Cholesky factor of the damped H^-1, the column order.
struct Problem {
  int64_t b = 1, r = 1, rows = 0, cols = 0;
  at::Tensor w, u, perm;  // perm undefined without act_order
};

at::Tensor permute_columns(const at::Tensor& x, const at::Tensor& perm) {
  return perm.defined() ? x.gather(2, perm.unsqueeze(1).expand_as(x)) : x;
}

Problem prepare(const at::Tensor& w_in, const at::Tensor& h_in, double damp, bool act_order, int64_t block_size,
                const char* what) {
  QNAS_CHECK(w_in.dim() == 2 && h_in.dim() == 3 && h_in.size(1) == w_in.size(1) && h_in.size(0) > 0 &&
                 w_in.size(0) % h_in.size(0) == 0,
             what, ": weight ", w_in.sizes(), " and H ", h_in.sizes(),
             "; expected [rows, cols] and [B, cols, cols] with B dividing rows");
  QNAS_CHECK(block_size >= 1, what, ": block size ", block_size, "; expected >= 1");
  Problem p;
  p.rows = w_in.size(0), p.cols = w_in.size(1), p.b = h_in.size(0), p.r = p.rows / p.b;
  auto [h, dead] = damped_hessian(h_in, damp);
  p.w = w_in.detach().to(at::kDouble).reshape({p.b, p.r, p.cols}).clone();
  p.w.masked_fill_(dead.unsqueeze(1).expand_as(p.w), 0.0);
  if (act_order) {
    p.perm = std::get<1>(h.diagonal(0, 1, 2).sort(/*stable=*/true, -1, /*descending=*/true));
    p.w = permute_columns(p.w, p.perm);
    h = h.gather(1, p.perm.unsqueeze(2).expand_as(h)).gather(2, p.perm.unsqueeze(1).expand_as(h));
  }
  p.u = at::linalg_cholesky(at::cholesky_inverse(at::linalg_cholesky(h)), /*upper=*/true);
  return p;
}

// Called when a group's first column (processing order) is reached, with
// the group's columns as updated so far [b, r, group_size]; sets their
// scale and zero.
using GroupRefit = std::function<void(int64_t col, const at::Tensor& current)>;

// GPTQ's column loop: codes [b, r, cols] in processing order.
at::Tensor round_columns(Problem& p, const at::Tensor& scale, const at::Tensor& zero, double qmin, double qmax,
                         int64_t block_size, int64_t group_size, const GroupRefit& refit) {
  at::Tensor codes = at::empty({p.b, p.r, p.cols}, at::kDouble);
  for (int64_t i1 = 0; i1 < p.cols; i1 += block_size) {
    const int64_t n = std::min(block_size, p.cols - i1), i2 = i1 + n;
    at::Tensor w1 = p.w.narrow(2, i1, n).clone();
    at::Tensor err1 = at::empty({p.b, p.r, n}, at::kDouble);
    const at::Tensor u1 = p.u.narrow(1, i1, n).narrow(2, i1, n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t col = i1 + i;
      if (refit && col % group_size == 0) {
        // The group's columns as updated so far: in this block (w1) and after it (w).
        const int64_t inside = std::min(group_size, n - i);
        at::Tensor cur = w1.narrow(2, i, inside);
        if (inside < group_size) cur = at::cat({cur, p.w.narrow(2, i2, group_size - inside)}, 2);
        refit(col, cur);
      }
      const at::Tensor wc = w1.select(2, i), s = scale.select(2, col), z = zero.select(2, col);
      const at::Tensor q = at::clamp(at::round((wc - z) / s), qmin, qmax);
      codes.select(2, col).copy_(q);
      const at::Tensor err = (wc - (q * s + z)) / u1.select(1, i).select(1, i).unsqueeze(1);
      w1.narrow(2, i, n - i).sub_(err.unsqueeze(2) * u1.select(1, i).narrow(1, i, n - i).unsqueeze(1));
      err1.select(2, i).copy_(err);
    }
    if (i2 < p.cols) p.w.narrow(2, i2, p.cols - i2).sub_(at::bmm(err1, p.u.narrow(1, i1, n).narrow(2, i2, p.cols - i2)));
  }
  return codes;
}

at::Tensor original_order(const Problem& p, const at::Tensor& codes) {
  const at::Tensor out = p.perm.defined()
                             ? at::empty_like(codes).scatter_(2, p.perm.unsqueeze(1).expand_as(codes), codes)
                             : codes;
  return out.reshape({p.rows, p.cols});
}

// Per-column scales and offsets [b, r, cols] of a grid, in processing order.
std::pair<at::Tensor, at::Tensor> column_params(const Problem& p, const Grid& g) {
  const auto s = expand_groups(g.scale, g.group_size).view({p.b, p.r, p.cols});
  const auto z = expand_groups(g.zero, g.group_size).view({p.b, p.r, p.cols});
  return {permute_columns(s, p.perm).contiguous(), permute_columns(z, p.perm).contiguous()};
}

}  // namespace

QuantizedWeight gptq(const at::Tensor& w, const at::Tensor& h, const GptqOptions& o) {
  Problem p = prepare(w, h, o.damp, o.act_order, o.block_size, "gptq");
  check_grid_spec(o.grid, p.cols, "gptq");
  // Fitted on W (dead columns zeroed) before any column moves; lazy groups refit below.
  Grid grid = fit_grid(original_order(p, p.w), o.grid);
  auto [scale, zero] = column_params(p, grid);
  GroupRefit refit;
  if (o.grid.granularity == Granularity::kGroup && !o.act_order) {
    refit = [&, gs = grid.group_size](int64_t col, const at::Tensor& current) {
      GridSpec one = o.grid;
      one.granularity = Granularity::kChannel;
      const Grid g = fit_grid(current.reshape({p.rows, gs}), one);
      grid.scale.select(1, col / gs).copy_(g.scale.squeeze(1));
      grid.zero.select(1, col / gs).copy_(g.zero.squeeze(1));
      scale.narrow(2, col, gs).copy_(g.scale.view({p.b, p.r, 1}).expand({p.b, p.r, gs}));
      zero.narrow(2, col, gs).copy_(g.zero.view({p.b, p.r, 1}).expand({p.b, p.r, gs}));
    };
  }
  const at::Tensor codes = round_columns(p, scale, zero, double(grid.qmin()), double(grid.qmax()), o.block_size,
                                         grid.group_size, refit);
  return {original_order(p, codes), grid};
}

at::Tensor gptq_codes(const at::Tensor& w, const at::Tensor& h, const Grid& grid, double damp, bool act_order,
                      int64_t block_size) {
  Problem p = prepare(w, h, damp, act_order, block_size, "gptq rounding");
  QNAS_CHECK(grid.scale.size(0) == p.rows && grid.scale.size(1) * grid.group_size == p.cols, "gptq rounding: grid ",
             grid.scale.sizes(), " x group ", grid.group_size, " for a weight ", w.sizes());
  const auto [scale, zero] = column_params(p, grid);
  const at::Tensor codes =
      round_columns(p, scale, zero, double(grid.qmin()), double(grid.qmax()), block_size, grid.group_size, {});
  return original_order(p, codes);
}

}  // namespace qnas::quant
