#pragma once
// SmoothQuant (Xiao et al. 2022, REFERENCES.md 2): migrates quantization
// difficulty from activations to weights with a per-input-channel factor
//   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)   (clamped to >= 1e-5),
// dividing input channel j of the activation by s_j and multiplying the
// weights that read it by s_j, so the layer computes the same function in
// exact arithmetic. Where the division goes (the preceding layer's folded BN,
// or an explicit scale) is the graph's business; this is the math.
//
// Weights: [out, in] (linear), [out, in, k, k] (dense conv: channel j is
// W[:, j]) or [C, 1, k, k] with groups == C (depthwise: channel j is W[j]).

#include <ATen/core/Tensor.h>

#include <string>

namespace qnas::quant {

/// Throws naming `where` unless alpha is in [0, 1].
void check_smoothquant_alpha(double alpha, const std::string& where);

/// Per input channel max |x| over everything else (x [N, C, ...]).
class ChannelAbsMax {
 public:
  void observe(const at::Tensor& x);
  bool seen() const { return amax_.defined(); }
  const at::Tensor& amax() const { return amax_; }  // [C], float

 private:
  at::Tensor amax_;
};

/// max|W_j| per input channel of a weight read by `groups`-grouped layer.
at::Tensor weight_channel_absmax(const at::Tensor& weight, int64_t groups);

/// s_j for act_absmax [C] and the weight; channels that never activate keep 1.
at::Tensor smoothing_factors(const at::Tensor& act_absmax, const at::Tensor& weight, int64_t groups, double alpha);

/// The weight with input channel j multiplied by s_j.
at::Tensor smooth_weight(const at::Tensor& weight, const at::Tensor& s, int64_t groups);

}  // namespace qnas::quant
