#pragma once
// The second moment of a layer's inputs, H = mean(x x^T), that GPTQ and
// decoupleQ minimise the layer's output error against:
//   |W X - W~ X|^2 / n = trace((W - W~) H (W - W~)^T).
// x is what one output value of the layer sees: a linear layer's input
// vector, or a convolution's unfolded k x k patch ("same" padding). A
// depthwise convolution has one H per channel (its rows see different
// inputs), so H is batched: [B, cols, cols], row r of the weight uses
// H[r / (rows / B)].

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace qnas::quant {

/// What a layer does to its input, as far as H is concerned.
struct LayerShape {
  int64_t in_channels = 0, kernel = 1, stride = 1, groups = 1;
  bool linear = false;  // input [N, in]; else [N, C, H, W]
  // Conv: at most this many output positions per image enter H, drawn at
  // random (seeded, anew for every image; 0 = all positions). Neighbouring patches overlap and are highly
  // correlated, and a 7x7 depthwise layer at 14x14 would otherwise cost
  // 49 x 49 x 196 multiply-adds per channel and image.
  int64_t max_positions = 0;
  uint64_t seed = 0;
  int64_t padding = 0;  // conv: zeros on each side
};

class HessianAccumulator {
 public:
  explicit HessianAccumulator(LayerShape shape);
  /// Adds a batch of the layer's inputs.
  void add(const at::Tensor& x);
  /// mean(x x^T) over every input column seen, [B, cols, cols] double.
  at::Tensor mean() const;
  int64_t samples() const { return samples_; }

 private:
  LayerShape shape_;
  at::Generator gen_;
  at::Tensor sum_;
  int64_t samples_ = 0;
};

/// trace(dW H dW^T) / trace(W H W^T) for W, W~ [rows, cols] and H batched
/// as above: the relative output error |WX - W~X|^2 / |WX|^2.
double relative_output_error(const at::Tensor& w, const at::Tensor& w_hat, const at::Tensor& h);

/// A weight of shape [out, in/groups, k, k] (or [out, in]) as [rows, cols].
at::Tensor as_matrix(const at::Tensor& weight);

}  // namespace qnas::quant
