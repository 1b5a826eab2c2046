#include "src/quant/grid.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "src/core/error.hpp"

namespace qnas::quant {

void check_grid_spec(const GridSpec& spec, int64_t cols, const std::string& where) {
  QNAS_CHECK(spec.bits >= 2 && spec.bits <= 8, where, ": ", spec.bits, "-bit weights; expected 2..8 bits");
  if (spec.granularity == Granularity::kGroup) {
    QNAS_CHECK(spec.group_size > 0, where, ": group size ", spec.group_size, "; expected a positive number of columns");
    QNAS_CHECK(cols % spec.group_size == 0, where, ": group size ", spec.group_size, " does not divide the ", cols,
               " input columns; expected a divisor of ", cols);
  }
  if (spec.clip == Clip::kPercentile)
    QNAS_CHECK(spec.percentile > 50 && spec.percentile <= 100, where, ": percentile ", spec.percentile,
               "; expected (50, 100]");
  if (spec.clip == Clip::kMse) {
    QNAS_CHECK(spec.mse_steps >= 1, where, ": ", spec.mse_steps, " MSE clipping steps; expected at least 1");
    QNAS_CHECK(spec.mse_min_ratio > 0 && spec.mse_min_ratio <= 1, where, ": MSE clipping down to ",
               spec.mse_min_ratio, " of the range; expected (0, 1]");
  }
}

int64_t Grid::qmin() const { return symmetric ? -qmax() : 0; }
int64_t Grid::qmax() const { return symmetric ? (int64_t(1) << (bits - 1)) - 1 : (int64_t(1) << bits) - 1; }

void take_where(const at::Tensor& better, const Grid& candidate, Grid& into) {
  const at::Tensor mask = better.dim() == 1 ? better.unsqueeze(1) : better;
  into.scale = at::where(mask, candidate.scale, into.scale);
  into.zero = at::where(mask, candidate.zero, into.zero);
}

at::Tensor expand_groups(const at::Tensor& per_group, int64_t group_size) {
  return per_group.repeat_interleave(group_size, 1);
}

namespace {

// w [rows, cols] as [rows, groups, group_size] doubles.
at::Tensor grouped(const at::Tensor& w, int64_t group_size) {
  return w.detach().to(at::kDouble).reshape({w.size(0), w.size(1) / group_size, group_size});
}

struct Range {
  at::Tensor lo, hi;  // [rows, groups]
};

Range observed_range(const at::Tensor& wg, const GridSpec& spec) {
  const bool per_tensor = spec.granularity == Granularity::kTensor;
  // Per tensor: one set of statistics over everything, broadcast to each row.
  const at::Tensor x = per_tensor ? wg.reshape({1, 1, -1}) : wg;
  Range r;
  if (spec.clip == Clip::kPercentile) {
    const double p = spec.percentile / 100.0;
    if (spec.symmetric) {
      r.hi = at::quantile(x.abs(), p, -1);
      r.lo = -r.hi;
    } else {
      r.hi = at::quantile(x, p, -1);
      r.lo = at::quantile(x, 1.0 - p, -1);
    }
  } else {
    r.lo = std::get<0>(x.min(-1));
    r.hi = std::get<0>(x.max(-1));
  }
  if (per_tensor) r.lo = r.lo.expand({wg.size(0), 1}).contiguous(), r.hi = r.hi.expand({wg.size(0), 1}).contiguous();
  return r;
}

Grid grid_from_range(const Range& r, int bits, bool symmetric, int64_t group_size) {
  Grid g;
  g.bits = bits;
  g.symmetric = symmetric;
  g.group_size = group_size;
  if (symmetric) {
    const auto amax = at::maximum(r.lo.abs(), r.hi.abs());
    g.scale = amax / double(g.qmax());
    g.zero = at::zeros_like(g.scale);
  } else {
    const auto lo = at::clamp_max(r.lo, 0.0), hi = at::clamp_min(r.hi, 0.0);
    g.scale = (hi - lo) / double(g.qmax());
  }
  // An all-zero group: any scale represents it exactly.
  g.scale = at::where(g.scale > 0, g.scale, at::ones_like(g.scale));
  if (!symmetric) {
    const auto zero_point = at::clamp(at::round(-at::clamp_max(r.lo, 0.0) / g.scale), 0, double(g.qmax()));
    g.zero = -zero_point * g.scale;
  }
  return g;
}

// Squared error of round-to-nearest per (row, group), or in total per tensor.
at::Tensor rtn_error(const at::Tensor& wg, const Grid& g, bool per_tensor) {
  const auto s = g.scale.unsqueeze(-1), z = g.zero.unsqueeze(-1);
  const auto q = at::clamp(at::round((wg - z) / s), double(g.qmin()), double(g.qmax()));
  const auto err = (q * s + z - wg).square().sum(-1);
  return per_tensor ? err.sum().expand_as(err) : err;
}

// The clip ratio of [lo, hi] with the least squared error, per (row, group).
Grid mse_grid(const at::Tensor& wg, const Range& full, const GridSpec& spec, int64_t group_size) {
  const bool per_tensor = spec.granularity == Granularity::kTensor;
  Grid best = grid_from_range(full, spec.bits, spec.symmetric, group_size);
  at::Tensor best_err = rtn_error(wg, best, per_tensor);
  for (int i = 1; i <= spec.mse_steps; ++i) {
    const double ratio = 1.0 - (1.0 - spec.mse_min_ratio) * i / spec.mse_steps;
    const Grid g = grid_from_range({full.lo * ratio, full.hi * ratio}, spec.bits, spec.symmetric, group_size);
    const at::Tensor err = rtn_error(wg, g, per_tensor);
    const at::Tensor better = err < best_err;
    take_where(better, g, best);
    best_err = at::where(better, err, best_err);
  }
  return best;
}

}  // namespace

Grid fit_grid(const at::Tensor& w, const GridSpec& spec) {
  QNAS_CHECK(w.dim() == 2 && w.numel() > 0, "fit_grid: weight of shape ", w.sizes(), "; expected [rows, cols]");
  check_grid_spec(spec, w.size(1), "weight grid");
  const int64_t group_size = spec.granularity == Granularity::kGroup ? spec.group_size : w.size(1);
  const at::Tensor wg = grouped(w, group_size);
  const Range range = observed_range(wg, spec);
  if (spec.clip == Clip::kMse) return mse_grid(wg, range, spec, group_size);
  return grid_from_range(range, spec.bits, spec.symmetric, group_size);
}

Grid fit_grid_clipped(const at::Tensor& w, const GridSpec& spec, double ratio) {
  QNAS_CHECK(ratio > 0 && ratio <= 1, "clip ratio ", ratio, "; expected (0, 1]");
  GridSpec minmax = spec;
  minmax.clip = Clip::kMinMax;
  const int64_t group_size = spec.granularity == Granularity::kGroup ? spec.group_size : w.size(1);
  const Range range = observed_range(grouped(w, group_size), minmax);
  return grid_from_range({range.lo * ratio, range.hi * ratio}, spec.bits, spec.symmetric, group_size);
}

at::Tensor grid_codes(const at::Tensor& w, const Grid& grid) {
  const auto s = expand_groups(grid.scale, grid.group_size), z = expand_groups(grid.zero, grid.group_size);
  return at::clamp(at::round((w.detach().to(at::kDouble) - z) / s), double(grid.qmin()), double(grid.qmax()));
}

at::Tensor grid_dequantize(const at::Tensor& codes, const Grid& grid) {
  return codes.to(at::kDouble) * expand_groups(grid.scale, grid.group_size) + expand_groups(grid.zero, grid.group_size);
}

at::Tensor rtn(const at::Tensor& w, const Grid& grid) {
  return grid_dequantize(grid_codes(w, grid), grid).to(w.scalar_type());
}

}  // namespace qnas::quant
