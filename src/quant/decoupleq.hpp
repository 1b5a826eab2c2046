#pragma once
// decoupleQ (Guo et al. 2024, REFERENCES.md 4), stage one: per layer,
// minimise the output error (W~ - W) H (W~ - W)^T over W~ = q * s + z, with
// integer codes q in [0, 2^b - 1] (the reference's [-2^(b-1), 2^(b-1)-1]
// shifted; z absorbs the shift) and float s, z per row or per group, by
// alternating two sub-problems:
//   integer step  s, z fixed: GPTQ-style rounding with inverse-Hessian error
//                 feedback ("gptq"), or projected gradient descent (Adam, as
//                 the reference) on the box-relaxed weights followed by the
//                 same column-wise rounding ("pgd");
//   float step    q fixed: least squares for (s, z) of each row, the 2G x 2G
//                 normal equations of its G groups.
// Each candidate is kept per row only if that row's loss drops, so the loss
// of every row never increases. Start: the min/max grid, then GPTQ rounding
// on it; the first alternation also searches the clipping ratio (H-weighted
// loss) before its float step. Stops early when an alternation improves
// fewer than 1e-4 of the rows.
//
// Stage two (scales, zeros and BN/bias fitted to the fp32 block's outputs)
// needs the network and lives with the calibration code.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "src/quant/gptq.hpp"
#include "src/quant/grid.hpp"

namespace qnas::quant {

struct DecoupleqOptions {
  int bits = 2;
  Granularity granularity = Granularity::kChannel;  // kChannel or kGroup
  int64_t group_size = 0;
  int iterations = 4;                 // 1: GPTQ rounding of the min/max grid only
  std::string integer_step = "gptq";  // gptq | pgd
  int pgd_steps = 100;                // Adam steps on the relaxation before rounding
  double pgd_lr = 1e-3;
  double damp = 0.01;
  bool act_order = true;
  int64_t block_size = 128;
  int clip_steps = 160;               // ratios 1, 1 - 1/200, ..., 1 - 159/200 (the reference's grid)
};

/// Throws naming `where` when bits are outside 2..8, the granularity is per
/// tensor, the group size does not divide `cols`, or a step parameter is bad.
void check_decoupleq_options(const DecoupleqOptions& o, int64_t cols, const std::string& where);

struct DecoupleqResult {
  QuantizedWeight weight;
  std::vector<at::Tensor> row_loss;  // [rows] after the start and after every accepted step
};

/// w [rows, cols]; h [B, cols, cols] (HessianAccumulator).
DecoupleqResult decoupleq(const at::Tensor& w, const at::Tensor& h, const DecoupleqOptions& o);

/// The float step: for fixed codes, the (s, z) of every (row, group) that
/// minimise the row's loss against h (least squares, normal equations).
Grid least_squares_grid(const at::Tensor& w, const at::Tensor& codes, const at::Tensor& h, const Grid& like);

/// (W~ - W) H (W~ - W)^T per row, H batched: [rows].
at::Tensor row_losses(const at::Tensor& w, const at::Tensor& w_hat, const at::Tensor& h);

}  // namespace qnas::quant
