#include "src/eval/metrics.hpp"

namespace qnas::eval {

using supernet::LayerInfo;

namespace {

bool factorized(const LayerInfo& l) {
  return l.compressible && l.policy.factorizes_layer(l.kind != "linear" && l.groups != 1);
}

// One part of a factorized layer: a dense (groups 1) or depthwise layer.
LayerInfo part(const LayerInfo& l, const std::string& kind, int64_t in, int64_t out, int64_t kernel,
               int64_t stride, int64_t out_h, int64_t out_w) {
  LayerInfo p = l;
  p.kind = kind;
  p.in_channels = in, p.out_channels = out;
  p.kernel = kernel, p.stride = stride;
  p.groups = kind == "dwconv" ? in : 1;
  p.out_h = out_h, p.out_w = out_w;
  p.weight_numel = out * (in / p.groups) * kernel * kernel;
  p.bias_numel = out;
  return p;
}

template <class F>
int64_t sum_parts(const LayerInfo& l, F f) {
  if (!factorized(l)) return f(l);
  int64_t total = 0;
  for (const auto& p : deployed_parts(l)) total += f(p);
  return total;
}

int64_t own_weight_bytes(const LayerInfo& l) {
  return quant::stored_weight_bytes(l.weight_numel, l.out_channels, l.policy);
}

int64_t own_bytes(const LayerInfo& l) {
  return quant::stored_layer_bytes(l.weight_numel, l.out_channels, l.bias_numel, l.policy) +
         (l.policy.calibrates_input() ? quant::kActQParamBytes : 0);
}

}  // namespace

std::vector<LayerInfo> deployed_parts(const LayerInfo& l) {
  if (!factorized(l)) return {l};
  const int64_t k2 = l.kernel * l.kernel, cin = l.in_channels, cout = l.out_channels;
  const int64_t r = quant::cp_rank_of(l.policy, cout, cin, k2);
  if (k2 == 1)  // the stride goes on the first 1x1
    return {part(l, l.kind, cin, r, 1, l.stride, l.out_h, l.out_w), part(l, l.kind, r, cout, 1, 1, l.out_h, l.out_w)};
  return {part(l, l.kind, cin, r, 1, 1, l.out_h * l.stride, l.out_w * l.stride),
          part(l, "dwconv", r, r, l.kernel, l.stride, l.out_h, l.out_w),
          part(l, l.kind, r, cout, 1, 1, l.out_h, l.out_w)};
}

int64_t layer_macs(const LayerInfo& l) {
  return sum_parts(l, [](const LayerInfo& p) { return p.macs(); });
}

int64_t layer_params(const LayerInfo& l) {
  return sum_parts(l, [](const LayerInfo& p) { return p.weight_numel + p.bias_numel; });
}

int64_t packed_weight_bytes(const LayerInfo& l) {
  return sum_parts(l, [](const LayerInfo& p) { return quant::packed_weight_bytes(p.weight_numel, p.policy.weight_bits); });
}

int64_t weight_bytes(const LayerInfo& l) { return sum_parts(l, own_weight_bytes); }

int64_t layer_bytes(const LayerInfo& l) { return sum_parts(l, own_bytes); }

int64_t layer_bops(const LayerInfo& l) {
  return sum_parts(l, [](const LayerInfo& p) { return p.macs() * p.policy.weight_bits * p.policy.act_bits; });
}

namespace {
template <class F>
int64_t sum(const std::vector<LayerInfo>& layers, F f) {
  int64_t total = 0;
  for (const auto& l : layers) total += f(l);
  return total;
}
}  // namespace

int64_t total_params(const std::vector<LayerInfo>& layers) { return sum(layers, layer_params); }
int64_t total_macs(const std::vector<LayerInfo>& layers) { return sum(layers, layer_macs); }
int64_t total_bops(const std::vector<LayerInfo>& layers) { return sum(layers, layer_bops); }
int64_t model_bytes(const std::vector<LayerInfo>& layers) { return sum(layers, layer_bytes); }

Metrics cost_metrics(const std::vector<LayerInfo>& layers) {
  return {{"params", double(total_params(layers))},
          {"macs", double(total_macs(layers))},
          {"bops", double(total_bops(layers))},
          {"model_bytes", double(model_bytes(layers))}};
}

}  // namespace qnas::eval
