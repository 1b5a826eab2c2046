#include "supernet/ops.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "src/core/error.hpp"
#include "src/quant/fake_quant.hpp"

namespace qnas::supernet {

std::array<Act, kActCount> all_acts() {
  std::array<Act, kActCount> out{};
  for (size_t i = 0; i < kActCount; ++i) out[i] = Act(i);
  return out;
}

Act parse_act(const std::string& name, const std::string& what) {
  std::string expected;
  for (const Act a : all_acts()) {
    if (name == act_name(a)) return a;
    expected += (expected.empty() ? "" : ", ") + std::string(act_name(a));
  }
  QNAS_THROW(what, ": '", name, "'; expected one of ", expected);
}

at::Tensor apply_act(const at::Tensor& x, Act act) {
  switch (act) {
    case Act::kRelu: return at::relu(x);
    case Act::kHswish: return at::hardswish(x);
    case Act::kHsigmoid: return at::hardsigmoid(x);
    case Act::kGelu: return at::gelu(x);  // the exact (erf) form
    case Act::kNone: break;
  }
  return x;
}

at::Tensor conv_same(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                     int64_t stride, int64_t groups) {
  return conv(x, w, bias, stride, w.size(-1) / 2, groups);
}

at::Tensor conv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, int64_t stride, int64_t padding,
                int64_t groups) {
  return at::conv2d(x, w, bias, {stride, stride}, {padding, padding}, {1, 1}, groups);
}

at::Tensor batch_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                      const at::Tensor& running_mean, const at::Tensor& running_var, bool training) {
  return at::batch_norm(x, gamma, beta, running_mean, running_var, training, 0.1, kBnEps,
                        /*cudnn_enabled=*/true);
}

at::Tensor squeeze_excite(const at::Tensor& x, const at::Tensor& w_reduce, const at::Tensor& b_reduce,
                          const at::Tensor& w_expand, const at::Tensor& b_expand) {
  auto s = x.mean({2, 3}, /*keepdim=*/true);
  s = at::relu(at::conv2d(s, w_reduce, b_reduce));
  s = at::hardsigmoid(at::conv2d(s, w_expand, b_expand));
  return x * s;
}

at::Tensor scale_channels(const at::Tensor& x, const at::Tensor& gate) {
  return x * gate.reshape({gate.size(0), gate.size(1), 1, 1});
}

const quant::LayerPolicy* FakeQuant::find(const std::string& layer) const {
  if (!policy_) return nullptr;
  const auto it = policy_->find(layer);
  QNAS_CHECK(it != policy_->end(), "quantization-aware forward: no policy for layer '", layer,
             "'; expected the subnet spec to give every active layer one");
  return &it->second;
}

at::Tensor FakeQuant::weight(const std::string& layer, const at::Tensor& w) const {
  const auto* p = find(layer);
  return p ? quant::fake_quant_weight_ste(w, p->weight_bits) : w;
}

at::Tensor FakeQuant::input(const std::string& layer, const at::Tensor& x) const {
  const auto* p = find(layer);
  return p ? quant::fake_quant_act_ste(x, p->act_bits) : x;
}

at::Tensor attention(const at::Tensor& qkv, int64_t heads, int64_t head_dim) {
  const int64_t n = qkv.size(0), t = qkv.size(1);
  const auto parts = qkv.reshape({n, t, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});  // 3, N, h, T, d
  const auto q = parts[0] * (1.0 / std::sqrt(double(head_dim)));
  const auto weights = at::softmax(at::matmul(q, parts[1].transpose(-2, -1)), -1);
  return at::matmul(weights, parts[2]).transpose(1, 2).reshape({n, t, heads * head_dim});
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta) {
  return at::layer_norm(x, {gamma.size(0)}, gamma, beta, kLnEps);
}

// A view of a channels-last map (what the convolutions produce), a copy otherwise.
at::Tensor to_tokens(const at::Tensor& x) { return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1, x.size(1)}); }

at::Tensor embed_tokens(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& class_token) {
  at::Tensor x = tokens;
  if (class_token.defined()) x = at::cat({class_token.reshape({1, 1, -1}).expand({x.size(0), 1, x.size(2)}), x}, 1);
  return x + positions.unsqueeze(0);
}

int64_t make_divisible(double v, int64_t divisor) {
  int64_t r = std::max(divisor, int64_t(v + double(divisor) / 2) / divisor * divisor);
  if (double(r) < 0.9 * v) r += divisor;
  return r;
}

}  // namespace qnas::supernet
