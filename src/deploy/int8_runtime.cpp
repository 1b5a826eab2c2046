#include "src/deploy/int8_runtime.hpp"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>

#include "src/core/error.hpp"
#include "src/deploy/simulate.hpp"

namespace qnas::deploy {

namespace {

using ConvPacked = c10::intrusive_ptr<ConvPackedParamsBase<2>>;
using LinearPacked = c10::intrusive_ptr<LinearPackedParamsBase>;

template <class Sig>
c10::TypedOperatorHandle<Sig> op(const char* name, const char* overload = "") {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload).typed<Sig>();
}

at::Tensor qint8_weight(const Node& n) {
  return at::_make_per_channel_quantized_tensor(n.weight_codes.to(at::kChar), n.weight_scales.to(at::kDouble),
                                                at::zeros({n.weight.size(0)}, at::kLong), 0);
}

Int8Model::Step int8_conv(const Node& n, const QParams& out) {
  static const auto prepack = op<ConvPacked(at::Tensor, c10::optional<at::Tensor>, c10::List<int64_t>,
                                            c10::List<int64_t>, c10::List<int64_t>, int64_t)>("quantized::conv2d_prepack");
  const int64_t pad = n.weight.size(-1) / 2;
  ConvPacked packed = prepack.call(qint8_weight(n), n.bias, c10::List<int64_t>({n.stride, n.stride}),
                                   c10::List<int64_t>({pad, pad}), c10::List<int64_t>({1, 1}), n.groups);
  const bool relu = n.act == supernet::Act::kRelu;
  return [packed, relu, out](const std::vector<at::Tensor>& in) {
    return relu ? packed->apply_relu(in[0], out.scale, out.zero_point) : packed->apply(in[0], out.scale, out.zero_point);
  };
}

Int8Model::Step int8_linear(const Node& n, const QParams& out) {
  static const auto prepack = op<LinearPacked(at::Tensor, c10::optional<at::Tensor>)>("quantized::linear_prepack");
  LinearPacked packed = prepack.call(qint8_weight(n), n.bias);
  const bool relu = n.act == supernet::Act::kRelu;
  return [packed, relu, out](const std::vector<at::Tensor>& in) {
    return relu ? packed->apply_relu(in[0], out.scale, out.zero_point) : packed->apply(in[0], out.scale, out.zero_point);
  };
}

Int8Model::Step int8_act(const Node& n, const QParams& out) {
  if (n.act == supernet::Act::kHsigmoid)
    return [](const std::vector<at::Tensor>& in) { return at::hardsigmoid(in[0]); };
  QNAS_CHECK(n.act == supernet::Act::kHswish, "deploy: node '", n.name, "': no quantized kernel for this activation");
  static const auto hswish = op<at::Tensor(const at::Tensor&, double, int64_t)>("quantized::hardswish");
  return [out](const std::vector<at::Tensor>& in) { return hswish.call(in[0], out.scale, out.zero_point); };
}

Int8Model::Step int8_binary(const Node& n, const QParams& out) {
  static const auto add = op<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>("quantized::add");
  static const auto mul = op<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>("quantized::mul");
  if (n.kind == OpKind::kAdd)
    return [out](const std::vector<at::Tensor>& in) { return add.call(in[0], in[1], out.scale, out.zero_point); };
  return [out](const std::vector<at::Tensor>& in) {
    const auto gate = in[1].reshape({in[1].size(0), in[1].size(1), 1, 1});
    return mul.call(in[0], gate, out.scale, out.zero_point);
  };
}

// A node whose output is quantized: runs on quantized tensors.
Int8Model::Step quantized_step(const Node& n, const QParams& out) {
  switch (n.kind) {
    case OpKind::kConv: return int8_conv(n, out);
    case OpKind::kLinear: return int8_linear(n, out);
    case OpKind::kAct: return int8_act(n, out);
    case OpKind::kAdd:
    case OpKind::kMul: return int8_binary(n, out);
    case OpKind::kMean: return [](const std::vector<at::Tensor>& in) { return in[0].mean({2, 3}); };
    case OpKind::kQuantize:
      return [out](const std::vector<at::Tensor>& in) {
        return at::quantize_per_tensor(in[0], out.scale, out.zero_point, at::kQUInt8);
      };
    case OpKind::kDequantize: break;
  }
  QNAS_THROW("deploy: node '", n.name, "' (", op_name(n.kind), ") has no quantized kernel");
}

Int8Model::Step float_step(const Node& n) {
  if (n.kind == OpKind::kDequantize) return [](const std::vector<at::Tensor>& in) { return in[0].dequantize(); };
  Node copy = n;  // fp32 weights only; drop the codes
  copy.weight_codes = at::Tensor();
  if (copy.kind == OpKind::kConv) copy.weight = copy.weight.contiguous(at::MemoryFormat::ChannelsLast);
  return [copy](const std::vector<at::Tensor>& in) { return run_fp32_node(copy, in); };
}

}  // namespace

void use_onednn_engine() {
  const auto& engines = at::globalContext().supportedQEngines();
  QNAS_CHECK(std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) != engines.end(),
             "deploy: this LibTorch has no ONEDNN quantized engine; expected LibTorch >= 1.13 built with oneDNN");
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
}

Int8Model::Int8Model(const Graph& g) : num_values_(g.values.size()), input_(g.input), output_(g.output) {
  QNAS_CHECK(g.calibrated, "deploy: Int8Model of an uncalibrated graph; expected calibrate() first");
  use_onednn_engine();
  const auto dead = g.dead_after();
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const auto& n = g.nodes[k];
    const auto& v = g.values[size_t(n.output)];
    ops_.push_back({v.quantized ? quantized_step(n, v.q) : float_step(n), n.inputs, n.output, dead[k]});
    if (n.has_weight()) ++(n.int8 ? int8_layers_ : fp32_layers_);
  }
}

at::Tensor Int8Model::forward(const at::Tensor& x) const {
  std::vector<at::Tensor> vals(num_values_);
  vals[size_t(input_)] = x;
  std::vector<at::Tensor> in;
  for (const auto& o : ops_) {
    in.clear();
    for (int i : o.inputs) in.push_back(vals[size_t(i)]);
    vals[size_t(o.output)] = o.step(in);
    for (int v : o.dead_after) vals[size_t(v)].reset();
  }
  return vals[size_t(output_)];
}

}  // namespace qnas::deploy
