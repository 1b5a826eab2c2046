#include "src/quant/smoothquant.hpp"

#include <ATen/ATen.h>

#include "src/core/error.hpp"

namespace qnas::quant {

void check_smoothquant_alpha(double alpha, const std::string& where) {
  QNAS_CHECK(alpha >= 0 && alpha <= 1, where, ": SmoothQuant alpha ", alpha, "; expected a value in [0, 1]");
}

void ChannelAbsMax::observe(const at::Tensor& x) {
  QNAS_CHECK(x.dim() >= 2, "channel abs-max: input of shape ", x.sizes(), "; expected [N, C, ...]");
  // Channels are axis 1 of images [N, C, H, W] and vectors [N, C], the last of tokens [N, T, C].
  const at::Tensor a = x.detach().abs();
  const at::Tensor by_channel = a.dim() == 3 ? a.reshape({-1, a.size(2)}).t() : a.transpose(0, 1).reshape({a.size(1), -1});
  const at::Tensor per_channel = by_channel.amax(1).to(at::kFloat);
  if (amax_.defined())
    QNAS_CHECK(amax_.size(0) == per_channel.size(0), "channel abs-max: ", per_channel.size(0), " channels after ",
               amax_.size(0), "; expected the same layer input every batch");
  amax_ = amax_.defined() ? at::maximum(amax_, per_channel) : per_channel;
}

namespace {

bool depthwise(const at::Tensor& weight, int64_t groups) {
  QNAS_CHECK(weight.dim() == 2 || weight.dim() == 4, "smoothquant: weight of shape ", weight.sizes(),
             "; expected [out, in] or [out, in/groups, k, k]");
  QNAS_CHECK(groups == 1 || (groups == weight.size(0) && weight.size(1) == 1), "smoothquant: ", groups,
             " groups for a weight ", weight.sizes(), "; expected a dense (1) or depthwise layer");
  return groups > 1;
}

// Shape that broadcasts a per-input-channel vector against the weight.
std::vector<int64_t> channel_shape(const at::Tensor& weight, bool dw) {
  std::vector<int64_t> shape(size_t(weight.dim()), 1);
  shape[dw ? 0 : 1] = -1;
  return shape;
}

}  // namespace

at::Tensor weight_channel_absmax(const at::Tensor& weight, int64_t groups) {
  const bool dw = depthwise(weight, groups);
  const at::Tensor w = weight.detach().abs();
  return dw ? w.reshape({w.size(0), -1}).amax(1) : w.transpose(0, 1).reshape({w.size(1), -1}).amax(1);
}

at::Tensor smoothing_factors(const at::Tensor& act_absmax, const at::Tensor& weight, int64_t groups, double alpha) {
  check_smoothquant_alpha(alpha, "smoothquant");
  const at::Tensor w_max = weight_channel_absmax(weight, groups).to(at::kDouble);
  QNAS_CHECK(act_absmax.dim() == 1 && act_absmax.size(0) == w_max.size(0), "smoothquant: ", act_absmax.numel(),
             " activation channels for a weight with ", w_max.size(0), " input channels");
  const at::Tensor a_max = act_absmax.to(at::kDouble);
  const at::Tensor s = (a_max.pow(alpha) / w_max.clamp_min(1e-5).pow(1 - alpha)).clamp_min(1e-5);
  // A channel that is always zero carries nothing to migrate.
  return at::where(a_max > 0, s, at::ones_like(s)).to(at::kFloat);
}

at::Tensor smooth_weight(const at::Tensor& weight, const at::Tensor& s, int64_t groups) {
  const bool dw = depthwise(weight, groups);
  return weight * s.to(weight.scalar_type()).reshape(channel_shape(weight, dw));
}

}  // namespace qnas::quant
