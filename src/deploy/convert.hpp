#pragma once
// Quantize (fp32 -> quint8) and Dequantize (quint8 -> fp32) on AVX2, for the
// int8 runtime's precision changes: LibTorch 1.13's at::quantize_per_tensor
// and dequantize() run per element in this build (no FBGEMM), and on a ViT,
// whose linears read LayerNorm's fp32 output and feed fp32 attention and
// residual adds, they took more time than the int8 linears themselves
// (experiments/bench/vit_int8.cpp --profile). Same results as LibTorch's:
// codes clamp(nearbyint(x * (1 / float(scale))) + zero_point, 0, 255) (the
// simulation's rounding), values (float(q) - zero_point) * float(scale).

#include <ATen/core/Tensor.h>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// fp32 (any memory format) -> quint8 with parameters q, in the same layout.
at::Tensor quantize_act(const at::Tensor& x, const QParams& q);

/// quint8 (per-tensor affine, any memory format) -> fp32, in the same layout.
at::Tensor dequantize_act(const at::Tensor& qx);

}  // namespace qnas::deploy
