#include "src/eval/metrics.hpp"

namespace qnas::eval {

using supernet::LayerInfo;

int64_t packed_weight_bytes(const LayerInfo& l) {
  return (l.weight_numel * l.policy.weight_bits + 7) / 8;
}

int64_t weight_bytes(const LayerInfo& l) {
  return quant::stored_weight_bytes(l.weight_numel, l.out_channels, l.policy);
}

int64_t layer_bytes(const LayerInfo& l) {
  return weight_bytes(l) + quant::kFloatBytes * l.bias_numel + (l.policy.quantizes_acts() ? quant::kActQParamBytes : 0);
}

int64_t layer_bops(const LayerInfo& l) {
  return l.macs() * l.policy.weight_bits * l.policy.act_bits;
}

namespace {
template <class F>
int64_t sum(const std::vector<LayerInfo>& layers, F f) {
  int64_t total = 0;
  for (const auto& l : layers) total += f(l);
  return total;
}
}  // namespace

int64_t total_params(const std::vector<LayerInfo>& layers) {
  return sum(layers, [](const LayerInfo& l) { return l.weight_numel + l.bias_numel; });
}
int64_t total_macs(const std::vector<LayerInfo>& layers) {
  return sum(layers, [](const LayerInfo& l) { return l.macs(); });
}
int64_t total_bops(const std::vector<LayerInfo>& layers) { return sum(layers, layer_bops); }
int64_t model_bytes(const std::vector<LayerInfo>& layers) { return sum(layers, layer_bytes); }

Metrics cost_metrics(const std::vector<LayerInfo>& layers) {
  return {{"params", double(total_params(layers))},
          {"macs", double(total_macs(layers))},
          {"bops", double(total_bops(layers))},
          {"model_bytes", double(model_bytes(layers))}};
}

}  // namespace qnas::eval
