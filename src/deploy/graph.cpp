#include "src/deploy/graph.hpp"

#include <ATen/ATen.h>

#include <map>

#include "src/core/dataset.hpp"
#include "src/core/error.hpp"
#include "src/quant/fake_quant.hpp"
#include "src/quant/hessian.hpp"
#include "supernet/subnet.hpp"

namespace qnas::deploy {

std::array<OpKind, kOpKindCount> all_op_kinds() {
  std::array<OpKind, kOpKindCount> out{};
  for (size_t i = 0; i < kOpKindCount; ++i) out[i] = OpKind(i);
  return out;
}

quant::GridSpec weight_grid_spec(const quant::LayerPolicy& p, const at::Tensor& weight, const std::string& layer) {
  quant::GridSpec spec;
  spec.bits = p.weight_bits;
  spec.symmetric = !quant::method_traits(p.method).free_offsets && p.param("sym", 1) == 1;
  const auto group = int64_t(p.param("group", 0));
  spec.granularity = p.param("per_tensor", 0) == 1 ? quant::Granularity::kTensor
                     : group > 0                    ? quant::Granularity::kGroup
                                                    : quant::Granularity::kChannel;
  spec.group_size = group;
  quant::check_grid_spec(spec, quant::as_matrix(weight).size(1), "layer '" + layer + "' (" + p.method + ")");
  return spec;
}

void set_rtn_weight(Node& n, const at::Tensor& w) {
  if (n.weight_bits >= 32) {
    n.weight = w.contiguous();
    return;
  }
  if (n.policy.general_grid()) {
    const auto grid = quant::fit_grid(quant::as_matrix(w), weight_grid_spec(n.policy, w, n.name));
    set_quantized_weight(n, {quant::grid_codes(quant::as_matrix(w), grid), grid}, w.sizes());
    return;
  }
  // Scales rounded to fp32 here: the precision every export stores them at,
  // so a reloaded export computes exactly what this graph computes.
  // Per tensor: one grid for every channel (stored per channel, all equal).
  const bool per_tensor = n.policy.param("per_tensor", 0) == 1;
  n.weight_scales = quant::symmetric_weight_scales(per_tensor ? w.reshape({1, -1}) : w, n.weight_bits)
                        .expand({w.size(0)})
                        .to(at::kFloat)
                        .to(at::kDouble)
                        .contiguous();
  n.weight_codes = quant::quantize_weight_codes(w, n.weight_scales, n.weight_bits);
  n.weight = quant::dequantize_weight_codes(n.weight_codes, n.weight_scales);
}

quant::QuantizedWeight quantized_weight(const Node& n) {
  quant::QuantizedWeight q;
  q.codes = quant::as_matrix(n.weight_codes).to(at::kDouble);
  q.grid.bits = n.weight_bits;
  if (n.general_grid()) {
    q.grid.symmetric = false;  // the offsets carry the asymmetry; dequantization reads only s, z
    q.grid.group_size = n.weight_group;
    q.grid.scale = n.weight_scales;
    q.grid.zero = n.weight_zeros;
  } else {
    q.grid.group_size = q.codes.size(1);
    q.grid.scale = n.weight_scales.unsqueeze(1);
    q.grid.zero = at::zeros_like(q.grid.scale);
  }
  return q;
}

void scale_output_channels(Node& n, const at::Tensor& r_in) {
  const at::Tensor r = r_in.to(at::kDouble);
  n.bias = (n.bias.to(at::kDouble) * r).to(at::kFloat).contiguous();
  if (n.weight_bits >= 32) {
    std::vector<int64_t> view(size_t(n.weight.dim()), 1);
    view[0] = r.numel();
    n.weight = (n.weight.to(at::kDouble) * r.view(view)).to(at::kFloat).contiguous();
    return;
  }
  auto q = quantized_weight(n);
  q.grid.scale = q.grid.scale * r.unsqueeze(1);
  q.grid.zero = q.grid.zero * r.unsqueeze(1);
  set_quantized_weight(n, q, n.weight.sizes().vec());
}

void set_quantized_weight(Node& n, const quant::QuantizedWeight& q, at::IntArrayRef shape) {
  // Scales and offsets rounded to fp32: the precision an export stores.
  quant::Grid grid = q.grid;
  grid.scale = grid.scale.to(at::kFloat).to(at::kDouble);
  grid.zero = grid.zero.to(at::kFloat).to(at::kDouble);
  n.weight = quant::grid_dequantize(q.codes, grid).to(at::kFloat).reshape(shape).contiguous();
  if (!n.policy.general_grid()) {  // symmetric per channel: int8 codes, one scale per row
    n.weight_codes = q.codes.to(at::kChar).reshape(shape);
    n.weight_scales = grid.scale.squeeze(1).contiguous();
  } else {
    n.weight_codes = q.codes.to(at::kInt).reshape(shape);
    n.weight_scales = grid.scale;
    n.weight_zeros = grid.zero;
    n.weight_group = grid.group_size;
  }
}

namespace {

using supernet::Act;

class GraphBuilder {
 public:
  explicit GraphBuilder(const supernet::SubnetImpl& subnet) : subnet_(subnet) {
    g_.input = add_value("input", false);
  }

  Graph finish(int logits) {
    g_.output = as_float(logits);
    return std::move(g_);
  }

  /// A compressible unit applied to value `in`; returns its output value.
  int layer(const supernet::ConvUnit& unit, int in) {
    const auto& d = unit->desc();
    const auto& policy = subnet_.policy(d.name);
    Node n;
    n.kind = d.kind == "linear" ? OpKind::kLinear : OpKind::kConv;
    n.name = d.name;
    n.weight_bits = policy.weight_bits;
    n.policy = policy;
    n.dynamic = policy.param("dynamic", 0) == 1;
    // LibTorch 1.13's ONEDNN conv2d_dynamic returns wrong values (measured:
    // zeros for a 1x1 conv), so dynamic quantization is for linear layers, as
    // PyTorch's own quantize_dynamic.
    QNAS_CHECK(!n.dynamic || n.kind == OpKind::kLinear, "deploy: layer '", d.name,
               "' is a conv; dynamic activation quantization runs on linear layers only (expected dynamic 0)");
    n.int8 = policy.weight_bits <= 8 && policy.act_bits == 8 && !policy.general_grid() && !n.dynamic;
    n.stride = d.stride;
    n.padding = d.padding();
    n.groups = d.groups();
    n.bias = unit->bias.detach().to(at::kFloat).contiguous();
    set_rtn_weight(n, unit->weight.detach());
    // An fp32 kernel with an 8-bit input computes on the dequantized input.
    const int x = policy.act_bits == 8 && !n.dynamic ? as_quantized(in) : in;
    const bool int8 = n.int8;
    n.inputs = {int8 ? x : as_float(x)};
    // Only ReLU fuses into the int8 kernels; other activations follow them.
    const bool fuse = !int8 || d.act == Act::kRelu || d.act == Act::kNone;
    n.act = fuse ? d.act : Act::kNone;
    const int out = add_node(std::move(n), d.name, /*quantized=*/int8);
    if (fuse) return out;
    return add_op(OpKind::kAct, {out}, d.name + ".act", true, quantized_act_source(d.act), d.act);
  }

  /// Quantized when every input is, fp32 otherwise.
  int elementwise(OpKind kind, int a, int b, const std::string& name) {
    if (g_.values[size_t(a)].quantized && g_.values[size_t(b)].quantized)
      return add_op(kind, {a, b}, name, true, QSource::kObserved);
    return add_op(kind, {as_float(a), as_float(b)}, name, false, QSource::kObserved);
  }

  /// An activation on its own: quantized when its input is (ReLU keeps the
  /// input's grid exactly, h-sigmoid has fixed parameters).
  int act(int x, Act act, const std::string& name) {
    if (!g_.values[size_t(x)].quantized) return add_op(OpKind::kAct, {x}, name, false, QSource::kObserved, act);
    return add_op(OpKind::kAct, {x}, name, true, quantized_act_source(act), act);
  }

  /// A transformer op in fp32 on x's fp32 view, with its own parameters
  /// (embed, LayerNorm) when given.
  int fp32_op(OpKind kind, int x, const std::string& name, const at::Tensor& weight = {}, const at::Tensor& bias = {}) {
    const int out = add_op(kind, {as_float(x)}, name, false, QSource::kObserved);
    auto& n = g_.nodes.back();
    if (weight.defined()) n.weight = weight.to(at::kFloat).contiguous();
    if (bias.defined()) n.bias = bias.to(at::kFloat).contiguous();
    return out;
  }

  int attention(int qkv, int64_t heads, int64_t head_dim, const std::string& name) {
    const int out = fp32_op(OpKind::kAttention, qkv, name);
    g_.nodes.back().heads = heads;
    g_.nodes.back().head_dim = head_dim;
    return out;
  }

  int mean(int x, const std::string& name) {
    const bool q = g_.values[size_t(x)].quantized;
    return add_op(OpKind::kMean, {x}, name, q, QSource::kInput);
  }

  int input() const { return g_.input; }

 private:
  // A quantized activation's grid: ReLU and GELU keep their input's (GELU(x)
  // lies between x and 0, so its outputs stay within its inputs' range),
  // h-sigmoid has a fixed one, h-swish is calibrated.
  static QSource quantized_act_source(Act act) {
    if (act == Act::kRelu || act == Act::kGelu) return QSource::kInput;
    return act == Act::kHsigmoid ? QSource::kFixed : QSource::kObserved;
  }

  int add_value(const std::string& name, bool quantized, QSource src = QSource::kObserved) {
    Value v;
    v.name = name;
    v.quantized = quantized;
    v.qsource = src;
    if (src == QSource::kFixed) v.q = {1.0 / 256.0, 0};
    g_.values.push_back(v);
    return int(g_.values.size()) - 1;
  }

  int add_node(Node n, const std::string& value_name, bool quantized, QSource src = QSource::kObserved) {
    n.output = add_value(value_name, quantized, src);
    g_.nodes.push_back(std::move(n));
    return g_.nodes.back().output;
  }

  int add_op(OpKind kind, std::vector<int> inputs, const std::string& name, bool quantized, QSource src,
             Act act = Act::kNone) {
    Node n;
    n.kind = kind;
    n.name = name;
    n.inputs = std::move(inputs);
    n.act = act;
    return add_node(std::move(n), name, quantized, src);
  }

  // One quantized (fp32) version per value, shared by all its consumers.
  int as_quantized(int v) {
    if (g_.values[size_t(v)].quantized) return v;
    auto it = quantized_of_.find(v);
    if (it != quantized_of_.end()) return it->second;
    const int q = add_op(OpKind::kQuantize, {v}, g_.values[size_t(v)].name + ".q", true, QSource::kObserved);
    return quantized_of_[v] = q;
  }

  int as_float(int v) {
    if (!g_.values[size_t(v)].quantized) return v;
    auto it = float_of_.find(v);
    if (it != float_of_.end()) return it->second;
    const int f = add_op(OpKind::kDequantize, {v}, g_.values[size_t(v)].name + ".dq", false, QSource::kObserved);
    return float_of_[v] = f;
  }

  const supernet::SubnetImpl& subnet_;
  Graph g_;
  std::map<int, int> quantized_of_, float_of_;
};

// One op of the subnet's op list on the graph; v maps the subnet's values to the graph's.
int lower(GraphBuilder& b, const supernet::SubnetImpl& subnet, const supernet::SubnetOp& op, const std::vector<int>& v) {
  using supernet::SubnetOpKind;
  const int x = v[size_t(op.inputs[0])];
  switch (op.kind) {
    case SubnetOpKind::kUnit: return b.layer(subnet.unit(op.name), x);
    case SubnetOpKind::kAdd: return b.elementwise(OpKind::kAdd, x, v[size_t(op.inputs[1])], op.name);
    case SubnetOpKind::kGate: return b.elementwise(OpKind::kMul, x, v[size_t(op.inputs[1])], op.name);
    case SubnetOpKind::kMean: return b.mean(x, op.name);
    case SubnetOpKind::kAct: return b.act(x, op.act, op.name);
    case SubnetOpKind::kDropout: return x;  // the identity when deployed
    case SubnetOpKind::kTokens: return b.fp32_op(OpKind::kTokens, x, op.name);
    case SubnetOpKind::kEmbed: return b.fp32_op(OpKind::kEmbed, x, op.name, op.weight, op.bias);
    case SubnetOpKind::kLayerNorm: return b.fp32_op(OpKind::kLayerNorm, x, op.name, op.weight, op.bias);
    case SubnetOpKind::kAttention: return b.attention(x, op.heads, op.head_dim, op.name);
    case SubnetOpKind::kTokenMean: return b.fp32_op(OpKind::kTokenMean, x, op.name);
    case SubnetOpKind::kClassToken: return b.fp32_op(OpKind::kClassToken, x, op.name);
  }
  QNAS_THROW("deploy: subnet op '", op.name, "' of unknown kind");
}

}  // namespace

std::vector<std::vector<int>> Graph::dead_after() const {
  std::vector<int> last(values.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int v : nodes[i].inputs) last[size_t(v)] = int(i);
  std::vector<std::vector<int>> dead(nodes.size());
  for (size_t v = 0; v < values.size(); ++v)
    if (last[v] >= 0 && int(v) != output) dead[size_t(last[v])].push_back(int(v));
  return dead;
}

std::vector<int> Graph::ranks() const {
  std::vector<int> rank(values.size(), 0);
  rank[size_t(input)] = 4;
  for (const auto& n : nodes) {
    const int in = rank[size_t(n.inputs[0])];
    switch (n.kind) {
      case OpKind::kMean:
      case OpKind::kTokenMean:
      case OpKind::kClassToken: rank[size_t(n.output)] = 2; break;
      case OpKind::kTokens: rank[size_t(n.output)] = 3; break;
      default: rank[size_t(n.output)] = in;  // shape-preserving, or a layer keeping its input's rank
    }
  }
  return rank;
}

int64_t Graph::model_bytes() const {
  int64_t bytes = 0;
  for (const auto& n : nodes) {
    if (n.kind == OpKind::kScale) bytes += quant::kFloatBytes * n.channel_scale.numel();
    if (n.has_params()) bytes += quant::kFloatBytes * (n.weight.numel() + (n.bias.defined() ? n.bias.numel() : 0));
    if (n.has_weight())
      bytes += quant::stored_layer_bytes(n.weight.numel(), n.general_grid() ? n.weight_scales.numel() : n.weight.size(0),
                                         n.weight_bits, n.general_grid(), n.bias.numel());
  }
  return bytes + quant::kActQParamBytes * own_act_params();
}

int64_t Graph::own_act_params() const {
  int64_t n = 0;
  for (const auto& v : values) n += v.quantized && v.qsource == QSource::kObserved;
  return n;
}

at::Tensor accumulator_scales(const Node& n, const QParams& input) {
  return (n.weight_scales.to(at::kDouble) * input.scale).to(at::kFloat);
}

at::Tensor bias_codes(const at::Tensor& bias, const at::Tensor& acc_scale) {
  const auto codes = at::round(bias.to(at::kFloat) / acc_scale);
  const float limit = 2147483520.f;  // the largest float below 2^31
  QNAS_CHECK(codes.abs().max().item<float>() <= limit, "deploy: a bias does not fit int32 at its accumulator scale");
  return codes.to(at::kInt);
}

at::Tensor InputDesc::mean_tensor() const { return core::channel_tensor(mean); }
at::Tensor InputDesc::std_tensor() const { return core::channel_tensor(std); }

at::Tensor normalize_input(const at::Tensor& raw, const InputDesc& input) {
  return (raw - input.mean_tensor()) / input.std_tensor();
}

Graph build_graph(const supernet::SubnetImpl& subnet, const InputDesc& input) {
  QNAS_CHECK(subnet.bn_folded(), "deploy: subnet BN is not folded; expected fold_bn() before build_graph()");
  GraphBuilder b(subnet);
  std::vector<int> v{b.input()};
  for (const auto& op : subnet.ops()) v.push_back(lower(b, subnet, op, v));
  Graph g = b.finish(v.back());
  QNAS_CHECK(int64_t(input.mean.size()) == input.channels && int64_t(input.std.size()) == input.channels,
             "deploy: input normalisation of ", input.mean.size(), " means and ", input.std.size(), " stds for ",
             input.channels, " channels; expected one of each per channel");
  g.input_desc = input;
  return g;
}

}  // namespace qnas::deploy
