#pragma once
// GPTQ (Frantar et al. 2022, REFERENCES.md 4): quantizes a weight column by
// column, each column rounded to its grid and its rounding error pushed onto
// the columns not yet quantized through the upper Cholesky factor U of
// H^-1 (w_j -= err * U[i, j] / U[i, i]), so the layer's output error
// trace(dW H dW^T) stays small. H is damped by damp * mean(diag H); columns
// whose input is always zero are dropped (weights 0). Updates inside a block
// of `block_size` columns are immediate, the rest are applied once per block
// (the "lazy batch" update: the same result, fewer memory passes).
//
// Grids: per tensor and per channel are fitted on W before the first column
// (as the reference); per group, each group's grid is fitted when its first
// column is reached, on the columns as updated so far. With act_order the
// columns are processed in decreasing diag(H); groups then keep their
// original contiguous columns and are fitted on W up front ("static
// groups"), so the result is stored and deployed like any grouped weight.

#include <ATen/core/Tensor.h>

#include "src/quant/grid.hpp"

namespace qnas::quant {

struct GptqOptions {
  GridSpec grid;
  double damp = 0.01;
  int64_t block_size = 128;
  bool act_order = false;
};

/// Integer codes and their grid: weight() = codes * s + z.
struct QuantizedWeight {
  at::Tensor codes;  // [rows, cols], double integers in [grid.qmin(), grid.qmax()]
  Grid grid;
  at::Tensor weight() const { return grid_dequantize(codes, grid); }
};

/// w [rows, cols]; h [B, cols, cols] with B dividing rows (HessianAccumulator).
QuantizedWeight gptq(const at::Tensor& w, const at::Tensor& h, const GptqOptions& opts);

/// GPTQ's rounding with error feedback on a fixed grid (decoupleQ's integer
/// step): codes [rows, cols] of w.
at::Tensor gptq_codes(const at::Tensor& w, const at::Tensor& h, const Grid& grid, double damp = 0.01,
                      bool act_order = false, int64_t block_size = 128);

/// H + damp * mean(diag H) * I per batch, with zero-diagonal (dead) inputs set
/// to 1 on the diagonal; also returns which columns were dead [B, cols].
std::pair<at::Tensor, at::Tensor> damped_hessian(const at::Tensor& h, double damp);

}  // namespace qnas::quant
