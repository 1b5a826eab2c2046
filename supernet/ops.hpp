#pragma once
// Functional pieces shared by the supernet's elastic forward and the
// extracted subnet's static forward, so both compute the same thing.

#include <ATen/core/Tensor.h>

#include <array>
#include <map>
#include <string>

#include "src/quant/policy.hpp"
#include "supernet/acts.hpp"

namespace qnas::supernet {

/// Every activation kind, in enum order.
std::array<Act, kActCount> all_acts();
/// The kind named `name`; throws naming `what` (a config key, a file) and the names.
Act parse_act(const std::string& name, const std::string& what = "activation");
at::Tensor apply_act(const at::Tensor& x, Act act);

/// Convolution with `padding` zeros on each side.
at::Tensor conv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, int64_t stride, int64_t padding,
                int64_t groups);

/// Convolution with "same" padding (kernel / 2).
at::Tensor conv_same(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                     int64_t stride, int64_t groups);

/// Batch normalisation; undefined running statistics in training mode mean
/// batch statistics only (the supernet does not track them: a subnet's
/// statistics come from recalibration).
at::Tensor batch_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                      const at::Tensor& running_mean, const at::Tensor& running_var, bool training);

inline constexpr double kBnEps = 1e-5;

/// Squeeze-and-excitation: x * hsigmoid(W_e relu(W_r mean_hw(x) + b_r) + b_e).
at::Tensor squeeze_excite(const at::Tensor& x, const at::Tensor& w_reduce, const at::Tensor& b_reduce,
                          const at::Tensor& w_expand, const at::Tensor& b_expand);

/// x (N,C,H,W) * gate (N,C), per image and channel: SE gating.
at::Tensor scale_channels(const at::Tensor& x, const at::Tensor& gate);

/// The compression a quantization-aware elastic forward (train.quant_aware)
/// simulates for one subnet: each layer's weight on its policy's symmetric
/// per-channel grid and its input on a per-tensor grid of the batch's range,
/// both straight-through. Every weight method trains on the RTN grid (GPTQ,
/// decoupleQ and the rest are applied after training, as without QAT).
/// Default-constructed, or for an fp32 policy, it passes tensors through.
class FakeQuant {
 public:
  FakeQuant() = default;
  /// `policy` must outlive this object.
  explicit FakeQuant(const std::map<std::string, quant::LayerPolicy>& policy) : policy_(&policy) {}

  at::Tensor weight(const std::string& layer, const at::Tensor& w) const;
  at::Tensor input(const std::string& layer, const at::Tensor& x) const;
  bool enabled() const { return policy_ != nullptr; }

 private:
  const quant::LayerPolicy* find(const std::string& layer) const;
  const std::map<std::string, quant::LayerPolicy>* policy_ = nullptr;
};

/// Multi-head self-attention on projected tokens: qkv (N, T, 3*heads*head_dim),
/// laid out as [q | k | v], each head-major; softmax(q k^T / sqrt(head_dim)) v
/// per head, heads concatenated: (N, T, heads*head_dim).
at::Tensor attention(const at::Tensor& qkv, int64_t heads, int64_t head_dim);

/// LayerNorm over the last axis (its size is gamma's).
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta);
inline constexpr double kLnEps = 1e-6;  // ViT's (timm, AutoFormer)

/// (N, C, H, W) feature maps as (N, H*W, C) tokens, row-major over positions.
at::Tensor to_tokens(const at::Tensor& x);

/// [class_token, tokens] + positions: tokens (N, T, C), class_token (C) or
/// undefined for none, positions (T or T + 1, C).
at::Tensor embed_tokens(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& class_token);

/// Rounds v to the nearest multiple of `divisor`, never more than 10% below v
/// (the MobileNet / OFA rule for channel counts).
int64_t make_divisible(double v, int64_t divisor = 8);

/// Hidden width of the SE bottleneck for `channels` inputs (reduction 4).
inline int64_t se_channels(int64_t channels) { return make_divisible(double(channels) / 4.0); }

}  // namespace qnas::supernet
