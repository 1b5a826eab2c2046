#include "src/deploy/int8_runtime.hpp"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "src/core/error.hpp"
#include "src/deploy/byte_table.hpp"
#include "src/deploy/convert.hpp"
#include "src/deploy/onednn_packing.hpp"
#include "src/deploy/simulate.hpp"

namespace qnas::deploy {

namespace {

template <class Sig>
c10::TypedOperatorHandle<Sig> op(const char* name, const char* overload = "") {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload).typed<Sig>();
}

Int8Model::Step int8_conv(const Node& n, const QParams& out) {
  detail::ConvPacked packed = detail::prepack_conv(n);
  const bool relu = n.act == supernet::Act::kRelu;
  return [packed, relu, out](const std::vector<at::Tensor>& in) {
    return relu ? packed->apply_relu(in[0], out.scale, out.zero_point) : packed->apply(in[0], out.scale, out.zero_point);
  };
}

// A linear on tokens (N,T,C): quantized::linear, which runs every token as a
// row (faster here than a 1x1 convolution over a T x 1 channels-last map).
Int8Model::Step int8_token_linear(const Node& n, const QParams& out) {
  using Linear = at::Tensor(at::Tensor, const c10::intrusive_ptr<LinearPackedParamsBase>&, double, int64_t);
  static const auto linear = op<Linear>("quantized::linear"), linear_relu = op<Linear>("quantized::linear_relu");
  const auto& f = n.act == supernet::Act::kRelu ? linear_relu : linear;
  detail::LinearPacked packed = detail::prepack_linear(n);
  return [packed, f, out](const std::vector<at::Tensor>& in) { return f.call(in[0], packed, out.scale, out.zero_point); };
}

// A linear on vectors runs as a 1x1 convolution on a 1x1 map: the same
// arithmetic, and LibTorch 1.13's ONEDNN conv path has less per-call
// overhead than its linear path (at batch 1, 7 vs 12 us per layer here).
Int8Model::Step int8_linear(const Node& n, const QParams& out, int input_rank) {
  if (input_rank == 3) return int8_token_linear(n, out);
  const auto step = int8_conv(detail::as_conv1x1(n), out);
  return [step](const std::vector<at::Tensor>& in) {
    const auto& x = in[0];
    const auto y = step({x.reshape({x.size(0), x.size(1), 1, 1})});
    return y.reshape({y.size(0), y.size(1)});
  };
}

// h-swish / h-sigmoid on quint8: a 256-entry table (deploy/byte_table.hpp).
Int8Model::Step int8_act(const Node& n, const QParams& in, const QParams& out) {
  const auto table = std::make_shared<const ByteTable>(n.act, in, out);
  return [table](const std::vector<at::Tensor>& x) { return table->apply(x[0]); };
}

// `relu`: a quantized add whose only reader is a ReLU on its grid runs as
// quantized::add_relu, exactly what the two compute (max(q, zero point)).
Int8Model::Step int8_binary(const Node& n, const QParams& out, bool relu = false) {
  using Binary = at::Tensor(at::Tensor, at::Tensor, double, int64_t);
  static const auto add = op<Binary>("quantized::add"), add_relu = op<Binary>("quantized::add_relu");
  static const auto mul = op<Binary>("quantized::mul");
  if (n.kind == OpKind::kAdd) {
    const auto& f = relu ? add_relu : add;
    return [out, f](const std::vector<at::Tensor>& in) { return f.call(in[0], in[1], out.scale, out.zero_point); };
  }
  // quantized::mul's broadcasting path is scalar; the gate expanded to the
  // full shape (a cheap uint8 copy) takes the vectorized one: 2.4x faster.
  return [out](const std::vector<at::Tensor>& in) {
    const auto& x = in[0];
    const auto gate = in[1].reshape({x.size(0), x.size(1), 1, 1}).expand(x.sizes()).contiguous(x.suggest_memory_format());
    return mul.call(x, gate, out.scale, out.zero_point);
  };
}

// A node whose output is quantized: runs on quantized tensors.
Int8Model::Step quantized_step(const Graph& g, const Node& n, int input_rank) {
  const QParams& out = g.values[size_t(n.output)].q;
  switch (n.kind) {
    case OpKind::kConv: return int8_conv(n, out);
    case OpKind::kLinear: return int8_linear(n, out, input_rank);
    case OpKind::kAct: return int8_act(n, g.values[size_t(n.inputs[0])].q, out);
    case OpKind::kAdd:
    case OpKind::kMul: return int8_binary(n, out);
    case OpKind::kMean:
      // Quantized mean() dequantizes; the pooling kernel runs on uint8 (10x faster).
      return [](const std::vector<at::Tensor>& in) {
        const auto& x = in[0];
        return at::avg_pool2d(x, {x.size(2), x.size(3)}).reshape({x.size(0), x.size(1)});
      };
    case OpKind::kQuantize: return [out](const std::vector<at::Tensor>& in) { return quantize_act(in[0], out); };
    case OpKind::kDequantize:
    case OpKind::kScale:
    case OpKind::kTokens:
    case OpKind::kEmbed:
    case OpKind::kLayerNorm:
    case OpKind::kAttention:
    case OpKind::kTokenMean:
    case OpKind::kClassToken: break;  // fp32 only (graph.hpp's precision rules)
  }
  QNAS_THROW("deploy: node '", n.name, "' (", op_name(n.kind), ") has no quantized kernel");
}

// A dynamic linear: fp32 in, the input quantized per call on
// kDynamicInputBits (reduce_range), fp32 out; the activation (when not none)
// follows in fp32.
Int8Model::Step dynamic_linear(const Node& n) {
  static const auto linear = op<at::Tensor(at::Tensor, const c10::intrusive_ptr<LinearPackedParamsBase>&, bool)>(
      "quantized::linear_dynamic");
  detail::LinearPacked packed = detail::prepack_linear(n);
  const auto act = n.act;
  static_assert(kDynamicInputBits == 7, "quantized::linear_dynamic offers 8 bits or 7 (reduce_range)");
  return [packed, act](const std::vector<at::Tensor>& in) {
    return supernet::apply_act(linear.call(in[0], packed, /*reduce_range=*/true), act);
  };
}

Int8Model::Step float_step(const Node& n) {
  if (n.dynamic) return dynamic_linear(n);
  if (n.kind == OpKind::kDequantize) return [](const std::vector<at::Tensor>& in) { return dequantize_act(in[0]); };
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

bool int8_accumulation_exact() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool exact = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
  return exact;
#else
  return true;
#endif
}

bool int8_may_saturate(const Graph& g) {
  if (int8_accumulation_exact()) return false;
  for (const auto& n : g.nodes)
    if (n.has_weight() && n.int8 && n.weight_codes.defined() && n.weight_codes.abs().max().item<int64_t>() > 63)
      return true;
  return false;
}

const char* int8_saturation_note() {
  return "this CPU has no VNNI: its int8 kernels add pairs of u8 x s8 products in int16, which saturates for "
         "weight codes beyond +-63 (8-bit weights), so int8 outputs may differ from the simulation; latency is "
         "representative, top-1 comes from the simulation";
}

Int8Model::Int8Model(const Graph& g) : graph_(g) {
  QNAS_CHECK(g.calibrated, "deploy: Int8Model of an uncalibrated graph; expected calibrate() first");
  use_onednn_engine();
  static std::once_flag warned;
  if (int8_may_saturate(g)) std::call_once(warned, [] { std::fprintf(stderr, "warning: %s\n", int8_saturation_note()); });
  for (const auto& n : g.nodes)
    if (n.has_weight()) ++(n.int8 || n.dynamic ? int8_layers_ : fp32_layers_);
}

namespace {

// Node k is a quantized ReLU on its input's grid whose input, a quantized
// add, has no other reader: the add computes both (int8_binary's relu).
bool relu_fused_into_add(const Graph& g, size_t k, const std::vector<int>& readers) {
  const auto& n = g.nodes[k];
  if (n.kind != OpKind::kAct || n.act != supernet::Act::kRelu) return false;
  const auto& out = g.values[size_t(n.output)];
  if (!out.quantized || out.qsource != QSource::kInput) return false;
  const int in = n.inputs[0];
  return k > 0 && g.nodes[k - 1].kind == OpKind::kAdd && g.nodes[k - 1].output == in && readers[size_t(in)] == 1 &&
         in != g.output;
}

}  // namespace

Int8Model::Ops Int8Model::build_ops() const {
  const auto dead = graph_.dead_after();
  const auto rank = graph_.ranks();
  std::vector<int> readers(graph_.values.size(), 0);
  for (const auto& n : graph_.nodes)
    for (int v : n.inputs) ++readers[size_t(v)];
  Ops ops;
  for (size_t k = 0; k < graph_.nodes.size(); ++k) {
    const auto& n = graph_.nodes[k];
    const auto& v = graph_.values[size_t(n.output)];
    std::string label = n.name + " (" + op_name(n.kind) + (v.quantized ? ", int8)" : ", fp32)");
    Step step = v.quantized ? quantized_step(graph_, n, rank[size_t(n.inputs[0])]) : float_step(n);
    if (k + 1 < graph_.nodes.size() && relu_fused_into_add(graph_, k + 1, readers)) {
      step = int8_binary(n, v.q, /*relu=*/true);
      label = n.name + " (add_relu, int8)";
    } else if (relu_fused_into_add(graph_, k, readers)) {
      step = [](const std::vector<at::Tensor>& in) { return in[0]; };
      label = n.name + " (act, fused into the add)";
    }
    ops.push_back({std::move(step), label, n.inputs, n.output, dead[k]});
  }
  return ops;
}

const Int8Model::Ops& Int8Model::ops_for(const at::Tensor& x) const {
  const std::pair<int64_t, int> key{x.size(0), at::get_num_threads()};
  std::lock_guard<std::mutex> lock(mutex_);
  auto& ops = ops_by_shape_[key];
  if (!ops) ops = std::make_unique<const Ops>(build_ops());
  return *ops;
}

template <class Timer>
at::Tensor Int8Model::run(const Ops& ops, const at::Tensor& x, Timer timer) const {
  std::vector<at::Tensor> vals(graph_.values.size());
  vals[size_t(graph_.input)] = x;
  std::vector<at::Tensor> in;
  for (size_t k = 0; k < ops.size(); ++k) {
    const auto& o = ops[k];
    in.clear();
    for (int i : o.inputs) in.push_back(vals[size_t(i)]);
    vals[size_t(o.output)] = timer(k, [&] { return o.step(in); });
    for (int v : o.dead_after) vals[size_t(v)].reset();
  }
  return vals[size_t(graph_.output)];
}

at::Tensor Int8Model::forward(const at::Tensor& x) const {
  return run(ops_for(x), x, [](size_t, const auto& step) { return step(); });
}

namespace {

std::string layout_of(const at::Tensor& t) {
  if (t.dim() == 3) return "tokens";
  if (t.dim() != 4) return "2d";
  return t.is_contiguous(at::MemoryFormat::ChannelsLast) ? "nhwc" : "nchw";
}

}  // namespace

std::vector<Int8Model::NodeTime> Int8Model::profile(const at::Tensor& x, int runs) const {
  QNAS_CHECK(runs >= 1, "deploy: profile runs ", runs, "; expected at least 1");
  const auto& ops = ops_for(x);
  std::vector<NodeTime> out(ops.size());
  run(ops, x, [&](size_t k, const auto& step) {
    auto y = step();
    out[k].node = ops[k].name;
    out[k].layout = layout_of(y);
    return y;
  });
  std::vector<double> ms(ops.size(), 0.0);
  for (int r = 0; r < runs; ++r)
    run(ops, x, [&](size_t k, const auto& step) {
      const auto t0 = std::chrono::steady_clock::now();
      auto y = step();
      ms[k] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      return y;
    });
  for (size_t k = 0; k < ops.size(); ++k) out[k].ms = ms[k] / runs;
  return out;
}

namespace detail {

namespace {
at::Tensor qint8_weight(const Node& n) {
  return at::_make_per_channel_quantized_tensor(n.weight_codes.to(at::kChar), n.weight_scales.to(at::kDouble),
                                                at::zeros({n.weight.size(0)}, at::kLong), 0);
}
}  // namespace

ConvPacked prepack_conv(const Node& n) {
  static const auto prepack = op<ConvPacked(at::Tensor, c10::optional<at::Tensor>, c10::List<int64_t>,
                                            c10::List<int64_t>, c10::List<int64_t>, int64_t)>("quantized::conv2d_prepack");
  const int64_t pad = n.padding;
  return prepack.call(qint8_weight(n), n.bias, c10::List<int64_t>({n.stride, n.stride}), c10::List<int64_t>({pad, pad}),
                      c10::List<int64_t>({1, 1}), n.groups);
}

LinearPacked prepack_linear(const Node& n) {
  static const auto prepack = op<LinearPacked(at::Tensor, c10::optional<at::Tensor>)>("quantized::linear_prepack");
  return prepack.call(qint8_weight(n), n.bias);
}

Node as_conv1x1(const Node& linear) {
  Node conv = linear;
  const auto o = linear.weight.size(0), i = linear.weight.size(1);
  conv.kind = OpKind::kConv;
  conv.weight = linear.weight.reshape({o, i, 1, 1});
  conv.weight_codes = linear.weight_codes.reshape({o, i, 1, 1});
  return conv;
}

}  // namespace detail

}  // namespace qnas::deploy
