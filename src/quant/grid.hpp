#pragma once
// Integer grids for weights, and the observers that fit them.
//
// A 2-D weight [rows, cols] (a conv's output channels by its flattened
// inputs) is cut into groups of `group_size` consecutive columns per row;
// each (row, group) has a scale s and an offset z and stores integer codes q:
//   w~ = q * s + z,   q in [qmin, qmax].
//   symmetric   z = 0, q in [-(2^(b-1)-1), 2^(b-1)-1] (restricted, as
//               oneDNN's int8 kernels and the deployed graph require)
//   asymmetric  q in [0, 2^b - 1], z = -zero_point * s with an integer
//               zero point (so 0 is exact); decoupleQ frees z to any float.
// Granularity: per tensor (one group over the whole tensor), per channel
// (one group per row) or per group of columns.
// Clipping (observers): min/max, a percentile of the values, or the clip
// ratio that minimises the group's squared error on a grid of ratios.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace qnas::quant {

enum class Granularity { kTensor, kChannel, kGroup };
enum class Clip { kMinMax, kPercentile, kMse };

struct GridSpec {
  int bits = 8;
  bool symmetric = true;
  Granularity granularity = Granularity::kChannel;
  int64_t group_size = 0;     // columns per group, kGroup only; must divide cols
  Clip clip = Clip::kMinMax;
  double percentile = 99.9;   // kPercentile: of |w| (symmetric) or of w at both ends
  int mse_steps = 100;        // kMse: ratios 1, 1 - 1/steps*(1-min), ..., mse_min_ratio
  double mse_min_ratio = 0.2;
};

/// Throws naming `where` when bits are outside 2..8, the group size is not
/// positive or does not divide `cols`, or a clip parameter is out of range.
void check_grid_spec(const GridSpec& spec, int64_t cols, const std::string& where);

/// Scales and offsets of every (row, group); fp64 tensors of shape
/// [rows, groups] (per tensor: every row holds the same values).
struct Grid {
  int bits = 8;
  bool symmetric = true;
  int64_t group_size = 0;  // columns per group (cols for per tensor / per channel)
  at::Tensor scale, zero;  // [rows, groups], double

  int64_t qmin() const;
  int64_t qmax() const;
  int64_t groups() const { return scale.size(1); }
};

/// Fits a grid to w [rows, cols] with the spec's observer.
Grid fit_grid(const at::Tensor& w, const GridSpec& spec);

/// The min/max grid of w with its range shrunk by `ratio` (0, 1]: the
/// candidates a clipping search walks through.
Grid fit_grid_clipped(const at::Tensor& w, const GridSpec& spec, double ratio);

/// Takes `candidate`'s scales and offsets where `better` is true: one flag
/// per (row, group) [rows, groups], or per row [rows]. The step of every
/// search over grids (clipping ratios, decoupleQ's alternations).
void take_where(const at::Tensor& better, const Grid& candidate, Grid& into);

/// Integer codes of w [rows, cols] on the grid (double tensor of integers):
/// round-to-nearest, clamped.
at::Tensor grid_codes(const at::Tensor& w, const Grid& grid);

/// q * s + z, [rows, cols] double.
at::Tensor grid_dequantize(const at::Tensor& codes, const Grid& grid);

/// Round-to-nearest: dequantize(codes(w)) in w's dtype.
at::Tensor rtn(const at::Tensor& w, const Grid& grid);

/// Per-column expansion of a [rows, groups] tensor to [rows, cols].
at::Tensor expand_groups(const at::Tensor& per_group, int64_t group_size);

}  // namespace qnas::quant
