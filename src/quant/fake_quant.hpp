#pragma once
// Fake quantization (quantize then dequantize in fp32) for the policies of
// the foundation: weights per output channel, symmetric, round-to-nearest on
// the restricted grid [-(2^(b-1)-1), 2^(b-1)-1] (zero point 0, as oneDNN's
// int8 kernels require); activations per tensor, asymmetric, on [0, 2^b-1]
// with min/max calibration.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace qnas::quant {

/// Largest integer magnitude of the symmetric b-bit grid: 2^(b-1) - 1.
int64_t symmetric_qmax(int bits);

/// Per-output-channel (dim 0) scales max|w_c| / qmax; all-zero channels get 1.
at::Tensor symmetric_weight_scales(const at::Tensor& w, int bits);

/// Integer codes of w on the per-channel grid (int8 tensor for bits <= 8).
at::Tensor quantize_weight_codes(const at::Tensor& w, const at::Tensor& scales, int bits);

/// codes * scales (per output channel), in fp32.
at::Tensor dequantize_weight_codes(const at::Tensor& codes, const at::Tensor& scales);

/// RTN fake quantization of a weight; bits == 32 returns w unchanged.
at::Tensor fake_quant_weight(const at::Tensor& w, int bits);

/// Quantization-aware training: fake_quant_weight in the forward, the
/// identity's gradient in the backward (straight-through; the scales are
/// constants of the step).
at::Tensor fake_quant_weight_ste(const at::Tensor& w, int bits);

/// Per-tensor affine parameters of an activation quantizer.
struct ActQParams {
  int bits = 32;
  double scale = 1.0;
  int64_t zero_point = 0;
  bool enabled() const { return bits < 32; }
};

/// Asymmetric parameters covering [min, max] (widened to include 0).
ActQParams act_qparams_from_range(double min, double max, int bits);

/// Fake-quantizes x; disabled parameters return x unchanged.
at::Tensor fake_quant_act(const at::Tensor& x, const ActQParams& q);

/// Quantization-aware training: x fake-quantized on the grid of its own
/// range (this batch's min/max, widened to 0, detached), with ATen's
/// straight-through gradient; bits == 32 returns x unchanged.
at::Tensor fake_quant_act_ste(const at::Tensor& x, int bits);

/// Running min/max of every tensor it sees.
class MinMaxObserver {
 public:
  void observe(const at::Tensor& x);
  bool seen() const { return seen_; }
  double min() const { return min_; }
  double max() const { return max_; }
  void reset() { seen_ = false; }

 private:
  bool seen_ = false;
  double min_ = 0, max_ = 0;
};

}  // namespace qnas::quant
