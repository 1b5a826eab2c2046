// ONNX export: the deployed graph in QDQ form, opset 17.
//
// A quantized value is a uint8 tensor produced by QuantizeLinear; float
// consumers read it through one shared DequantizeLinear. An int8 conv or
// gemm reads DequantizeLinear(input), DequantizeLinear(int8 weights,
// per-channel scales, axis 0) and DequantizeLinear(int32 bias at scale
// s_in * s_w), and its output is quantized: the pattern ONNX Runtime fuses
// into integer kernels. Everything else is plain fp32 ONNX.
#include <ATen/ATen.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "src/core/error.hpp"
#include "src/deploy/export_formats.hpp"

namespace qnas::deploy::detail {

namespace {

constexpr int kOpset = 17;
constexpr int kIrVersion = 8;  // ONNX 1.12

int onnx_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return onnx::TensorProto::FLOAT;
    case at::kChar: return onnx::TensorProto::INT8;
    case at::kByte: return onnx::TensorProto::UINT8;
    case at::kInt: return onnx::TensorProto::INT32;
    case at::kLong: return onnx::TensorProto::INT64;
    default: break;
  }
  QNAS_THROW("onnx export: no ONNX type for tensor type ", t);
}

class OnnxWriter {
 public:
  explicit OnnxWriter(const Graph& g) : g_(g), rank_(g.ranks()) {
    model_.set_ir_version(kIrVersion);
    model_.set_producer_name("qnas");
    model_.set_model_version(1);
    auto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    graph_ = model_.mutable_graph();
    graph_->set_name("qnas_subnet");
  }

  onnx::ModelProto build() {
    add_io();
    for (const auto& n : g_.nodes) add_node(n);
    return std::move(model_);
  }

 private:
  // ---- names and constants ------------------------------------------------

  std::string name_of(int v) const { return v == g_.output ? "logits" : g_.values[size_t(v)].name; }
  const QParams& q_of(int v) const { return g_.values[size_t(v)].q; }
  bool quantized(int v) const { return g_.values[size_t(v)].quantized; }

  std::string constant(const std::string& name, const at::Tensor& t) {
    const auto c = t.contiguous();
    auto* init = graph_->add_initializer();
    init->set_name(name);
    init->set_data_type(onnx_type(c.scalar_type()));
    for (auto d : c.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), size_t(c.nbytes())));
    return name;
  }

  // A constant used by many nodes, made once.
  std::string shared_constant(const std::string& name, const at::Tensor& t) {
    if (!shared_.count(name)) shared_.insert(constant(name, t));
    return name;
  }
  std::string scalar(const std::string& name, float v) { return shared_constant(name, at::scalar_tensor(v, at::kFloat)); }
  std::string ints(const std::string& name, const std::vector<int64_t>& v) {
    return shared_constant(name, at::tensor(v, at::kLong));
  }

  onnx::NodeProto* op(const std::string& type, std::vector<std::string> inputs, const std::string& output) {
    auto* n = graph_->add_node();
    n->set_op_type(type);
    n->set_name(output + "/" + type);
    for (auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  static void attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

  // ---- values ---------------------------------------------------------------

  // The fp32 view of a value: itself, or one shared DequantizeLinear.
  std::string float_of(int v) {
    if (!quantized(v)) return name_of(v);
    auto it = dequantized_.find(v);
    if (it != dequantized_.end()) return it->second;
    const std::string out = name_of(v) + ".f";
    dequantize_linear(name_of(v), v, out);
    return dequantized_[v] = out;
  }

  // Per-tensor activation parameters of value v: fp32 scale and uint8 zero
  // point (scalar initializers, made once).
  std::pair<std::string, std::string> act_qparams(int v) {
    auto it = qparams_.find(v);
    if (it != qparams_.end()) return it->second;
    const auto base = g_.values[size_t(v)].name;
    return qparams_[v] = {constant(base + ".scale", at::scalar_tensor(float(q_of(v).scale), at::kFloat)),
                          constant(base + ".zero_point", at::scalar_tensor(q_of(v).zero_point, at::kLong).to(at::kByte))};
  }

  // y = QuantizeLinear(x) / DequantizeLinear(x) with value v's parameters.
  void quantize_linear(const std::string& x, int v, const std::string& y) {
    const auto [scale, zp] = act_qparams(v);
    op("QuantizeLinear", {x, scale, zp}, y);
  }
  void dequantize_linear(const std::string& x, int v, const std::string& y) {
    const auto [scale, zp] = act_qparams(v);
    op("DequantizeLinear", {x, scale, zp}, y);
  }

  // Writes node output `v` from its fp32 result `y`: quantized or as is.
  void produce(int v, const std::string& y) {
    if (quantized(v)) quantize_linear(y, v, name_of(v));  // else y is already name_of(v)
  }

  // Where an fp32 result goes: the value's own name, or a temporary that a
  // QuantizeLinear reads.
  std::string result_name(int v) const { return quantized(v) ? name_of(v) + ".y" : name_of(v); }

  // ---- nodes ----------------------------------------------------------------

  void add_io() {
    const auto& in = g_.input_desc;
    auto* x = graph_->add_input();
    x->set_name("pixels");
    auto* xt = x->mutable_type()->mutable_tensor_type();
    xt->set_elem_type(onnx::TensorProto::FLOAT);
    xt->mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : {in.channels, in.height, in.width}) xt->mutable_shape()->add_dim()->set_dim_value(d);
    // The dataset's normalisation, in fp32 as it computes it.
    const auto mean = constant("input.mean", in.mean_tensor());
    const auto stdv = constant("input.std", in.std_tensor());
    op("Sub", {"pixels", mean}, "pixels.centred");
    op("Div", {"pixels.centred", stdv}, name_of(g_.input));

    auto* y = graph_->add_output();
    y->set_name("logits");
    auto* yt = y->mutable_type()->mutable_tensor_type();
    yt->set_elem_type(onnx::TensorProto::FLOAT);
    yt->mutable_shape()->add_dim()->set_dim_param("batch");
    yt->mutable_shape()->add_dim()->set_dim_value(classes());
  }

  int64_t classes() const {
    for (auto it = g_.nodes.rbegin(); it != g_.nodes.rend(); ++it)
      if (it->has_weight()) return it->weight.size(0);
    QNAS_THROW("onnx export: the graph has no layer with weights");
  }

  void add_node(const Node& n) {
    switch (n.kind) {
      case OpKind::kConv:
      case OpKind::kLinear: return add_layer(n);
      case OpKind::kAct: {
        const auto y = result_name(n.output);
        add_act(float_of(n.inputs[0]), n.act, y);
        return produce(n.output, y);
      }
      case OpKind::kAdd: {
        const auto y = result_name(n.output);
        op("Add", {float_of(n.inputs[0]), float_of(n.inputs[1])}, y);
        return produce(n.output, y);
      }
      case OpKind::kMul: return add_gating(n);
      case OpKind::kMean: return add_pool(n);
      case OpKind::kQuantize: return quantize_linear(float_of(n.inputs[0]), n.output, name_of(n.output));
      case OpKind::kDequantize: {
        dequantize_source_[n.output] = n.inputs[0];
        return dequantize_linear(name_of(n.inputs[0]), n.inputs[0], name_of(n.output));
      }
      case OpKind::kScale: {
        const auto y = result_name(n.output);
        op("Mul", {fp32_layer_input(n.inputs[0]), constant(n.name + ".channel_scale", n.channel_scale)}, y);
        return produce(n.output, y);
      }
      case OpKind::kTokens: {  // (N,C,H,W) -> (N,C,H*W) -> (N,H*W,C)
        op("Reshape", {float_of(n.inputs[0]), ints("shape.keep2_flatten", {0, 0, -1})}, n.name + ".flat");
        attr(op("Transpose", {n.name + ".flat"}, name_of(n.output)), "perm", std::vector<int64_t>{0, 2, 1});
        return;
      }
      case OpKind::kEmbed: return add_embed(n);
      case OpKind::kLayerNorm: {
        auto* ln = op("LayerNormalization",
                      {float_of(n.inputs[0]), constant(n.name + ".weight", n.weight), constant(n.name + ".bias", n.bias)},
                      name_of(n.output));
        attr(ln, "axis", int64_t(-1));
        attr(ln, "epsilon", float(supernet::kLnEps));
        return;
      }
      case OpKind::kAttention: return add_attention(n);
      case OpKind::kTokenMean: {
        auto* mean = op("ReduceMean", {float_of(n.inputs[0])}, name_of(n.output));
        attr(mean, "axes", std::vector<int64_t>{1});
        attr(mean, "keepdims", int64_t(0));
        return;
      }
      case OpKind::kClassToken:
        attr(op("Gather", {float_of(n.inputs[0]), shared_constant("index.0", at::scalar_tensor(0, at::kLong))},
                name_of(n.output)),
             "axis", int64_t(1));
        return;
    }
  }

  // [class token, tokens] + positions; the class token expanded to (N,1,C).
  void add_embed(const Node& n) {
    std::string x = float_of(n.inputs[0]);
    if (n.bias.defined()) {
      const auto c = n.bias.size(0);
      op("Shape", {x}, n.name + ".shape");
      op("Slice", {n.name + ".shape", ints("index.0_1d", {0}), ints("index.1_1d", {1})}, n.name + ".batch");
      attr(op("Concat", {n.name + ".batch", constant(n.name + ".class_shape", at::tensor(std::vector<int64_t>{1, c}))},
              n.name + ".class_dims"),
           "axis", int64_t(0));
      op("Expand", {constant(n.name + ".class_token", n.bias.reshape({1, 1, c})), n.name + ".class_dims"},
         n.name + ".classes");
      attr(op("Concat", {n.name + ".classes", x}, n.name + ".tokens"), "axis", int64_t(1));
      x = n.name + ".tokens";
    }
    op("Add", {x, constant(n.name + ".positions", n.weight)}, name_of(n.output));
  }

  // supernet::attention: (N,T,3*h*d) -> (3,N,h,T,d); softmax(q k^T / sqrt(d)) v -> (N,T,h*d).
  void add_attention(const Node& n) {
    const auto base = n.name + ".";
    op("Reshape", {float_of(n.inputs[0]), constant(base + "qkv_shape", at::tensor(std::vector<int64_t>{0, 0, 3, n.heads, n.head_dim}))},
       base + "qkv");
    attr(op("Transpose", {base + "qkv"}, base + "qkv_t"), "perm", std::vector<int64_t>{2, 0, 3, 1, 4});
    const char* parts[] = {"query", "key", "value"};  // not ".q": a Quantize node's suffix
    for (int i = 0; i < 3; ++i)
      attr(op("Gather", {base + "qkv_t", shared_constant("index." + std::to_string(i), at::scalar_tensor(i, at::kLong))},
              base + parts[i]),
           "axis", int64_t(0));
    op("Mul", {base + "query", constant(base + "scale", at::scalar_tensor(float(1.0 / std::sqrt(double(n.head_dim)))))},
       base + "query_scaled");
    attr(op("Transpose", {base + "key"}, base + "key_t"), "perm", std::vector<int64_t>{0, 1, 3, 2});
    op("MatMul", {base + "query_scaled", base + "key_t"}, base + "logits");
    attr(op("Softmax", {base + "logits"}, base + "weights"), "axis", int64_t(-1));
    op("MatMul", {base + "weights", base + "value"}, base + "heads");
    attr(op("Transpose", {base + "heads"}, base + "heads_t"), "perm", std::vector<int64_t>{0, 2, 1, 3});
    op("Reshape", {base + "heads_t", constant(base + "out_shape", at::tensor(std::vector<int64_t>{0, 0, n.heads * n.head_dim}))},
       name_of(n.output));
  }

  void add_act(const std::string& x, supernet::Act act, const std::string& y) {
    switch (act) {
      case supernet::Act::kNone: op("Identity", {x}, y); return;
      case supernet::Act::kRelu: op("Relu", {x}, y); return;
      case supernet::Act::kHswish: op("HardSwish", {x}, y); return;
      case supernet::Act::kHsigmoid: {
        auto* n = op("HardSigmoid", {x}, y);  // relu6(x + 3) / 6
        attr(n, "alpha", 1.0f / 6.0f);
        attr(n, "beta", 0.5f);
        return;
      }
      case supernet::Act::kGelu: {  // opset 17 has no Gelu: x * (1 + erf(x / sqrt 2)) / 2, the exact form
        op("Div", {x, scalar("gelu.sqrt2", float(std::sqrt(2.0)))}, y + ".gelu_arg");
        op("Erf", {y + ".gelu_arg"}, y + ".gelu_erf");
        op("Add", {y + ".gelu_erf", scalar("gelu.one", 1.0f)}, y + ".gelu_sum");
        op("Mul", {x, y + ".gelu_sum"}, y + ".gelu_prod");
        op("Mul", {y + ".gelu_prod", scalar("gelu.half", 0.5f)}, y);
        return;
      }
    }
  }

  // Weights as stored: fp32, or int8 codes dequantized per output channel;
  // a grouped or offset grid as its dequantized fp32 weight (opset 17 has
  // no block-wise or float-offset DequantizeLinear).
  // `transposed`: as (in, out) for MatMul, the scales along axis 1.
  std::string weights(const Node& n, bool transposed = false) {
    const auto stored = [&](const at::Tensor& w) { return transposed ? w.t() : w; };
    if (n.weight_bits >= 32 || n.general_grid()) return constant(n.name + ".weight", stored(n.weight.to(at::kFloat)));
    const auto codes = constant(n.name + ".weight_int8", stored(n.weight_codes.to(at::kChar)));
    const auto scale = constant(n.name + ".weight_scale", n.weight_scales.to(at::kFloat));
    const auto zp = constant(n.name + ".weight_zero_point", at::zeros({n.weight.size(0)}, at::kChar));
    attr(op("DequantizeLinear", {codes, scale, zp}, n.name + ".weight"), "axis", int64_t(transposed ? 1 : 0));
    return n.name + ".weight";
  }

  // fp32 bias, or for an int8 layer int32 at the accumulator scale s_in * s_w
  // (calibrate() put the bias on that grid, so the codes are exact).
  std::string bias(const Node& n) {
    if (!n.int8) return constant(n.name + ".bias", n.bias.to(at::kFloat));
    const auto acc_scale = accumulator_scales(n, q_of(n.inputs[0]));
    const auto codes = bias_codes(n.bias, acc_scale);
    const auto q = constant(n.name + ".bias_int32", codes);
    const auto scale = constant(n.name + ".bias_scale", acc_scale);
    attr(op("DequantizeLinear", {q, scale}, n.name + ".bias"), "axis", int64_t(0));
    return n.name + ".bias";
  }

  // The input of an fp32 layer that reads a dequantized value, dequantized
  // with plain arithmetic: (float(q) - zero_point) * scale, what
  // DequantizeLinear computes. A DequantizeLinear there would let ONNX
  // Runtime's WeightBiasQuantization treat DQ -> Conv -> Q as an int8 group
  // and quantize the fp32 weights per tensor, which is not this model.
  std::string fp32_layer_input(int v) {
    const auto it = dequantize_source_.find(v);
    if (it == dequantize_source_.end()) return float_of(v);
    const int q = it->second;
    if (arith_dequantized_.count(q)) return arith_dequantized_[q];
    const auto base = name_of(q);
    const auto scale = act_qparams(q).first;
    const auto zp_f = constant(base + ".zero_point_f", at::scalar_tensor(float(q_of(q).zero_point), at::kFloat));
    attr(op("Cast", {name_of(q)}, base + ".cast"), "to", int64_t(onnx::TensorProto::FLOAT));
    op("Sub", {base + ".cast", zp_f}, base + ".centred");
    op("Mul", {base + ".centred", scale}, base + ".arith_dq");
    return arith_dequantized_[q] = base + ".arith_dq";
  }

  void add_layer(const Node& n) {
    if (n.dynamic) return add_dynamic_linear(n);
    const auto x = n.int8 ? float_of(n.inputs[0]) : fp32_layer_input(n.inputs[0]);
    const bool on_tokens = rank_[size_t(n.inputs[0])] == 3;  // Gemm takes matrices only
    const auto w = weights(n, on_tokens), b = bias(n);
    const auto y = result_name(n.output);
    const auto pre = n.act == supernet::Act::kNone ? y : n.name + ".linear";
    if (on_tokens) {
      op("MatMul", {x, w}, n.name + ".matmul");
      op("Add", {n.name + ".matmul", b}, pre);
    } else if (n.kind == OpKind::kConv) {
      const int64_t k = n.weight.size(-1), pad = n.padding;
      auto* c = op("Conv", {x, w, b}, pre);
      attr(c, "kernel_shape", std::vector<int64_t>{k, k});
      attr(c, "pads", std::vector<int64_t>{pad, pad, pad, pad});
      attr(c, "strides", std::vector<int64_t>{n.stride, n.stride});
      attr(c, "group", n.groups);
    } else {
      attr(op("Gemm", {x, w, b}, pre), "transB", int64_t(1));
    }
    if (n.act != supernet::Act::kNone) add_act(pre, n.act, y);
    produce(n.output, y);
  }

  // A linear whose fp32 input is quantized per call (quantized::linear_dynamic):
  // DynamicQuantizeLinear picks that call's uint8 scale and zero point from
  // its min/max (0 included), MatMulInteger accumulates the codes in int32,
  // and the accumulator is scaled by s_x * s_w (per output channel) in fp32.
  // DynamicQuantizeLinear has 8-bit codes only, one bit finer than the
  // runtime's kDynamicInputBits (ONNX Runtime's kernels are its own).
  void add_dynamic_linear(const Node& n) {
    const auto x = fp32_layer_input(n.inputs[0]), base = n.name + ".x";
    auto* quantize = op("DynamicQuantizeLinear", {x}, base + "_q");
    quantize->add_output(base + "_scale");
    quantize->add_output(base + "_zero_point");
    const auto codes = constant(n.name + ".weight_int8_t", n.weight_codes.to(at::kChar).t().contiguous());
    op("MatMulInteger", {base + "_q", codes, base + "_zero_point"}, n.name + ".acc");
    attr(op("Cast", {n.name + ".acc"}, n.name + ".acc_f"), "to", int64_t(onnx::TensorProto::FLOAT));
    op("Mul", {n.name + ".acc_f", base + "_scale"}, n.name + ".acc_x");
    op("Mul", {n.name + ".acc_x", constant(n.name + ".weight_scale", n.weight_scales.to(at::kFloat))},
       n.name + ".product");
    const auto y = result_name(n.output);
    const auto pre = n.act == supernet::Act::kNone ? y : n.name + ".linear";
    op("Add", {n.name + ".product", constant(n.name + ".bias", n.bias.to(at::kFloat))}, pre);
    if (n.act != supernet::Act::kNone) add_act(pre, n.act, y);
    produce(n.output, y);
  }

  // x (N,C,H,W) * gate (N,C): the gate gets its 1x1 spatial axes back (on
  // the uint8 tensor when quantized, so the multiply reads DequantizeLinear).
  void add_gating(const Node& n) {
    const int x = n.inputs[0], gate = n.inputs[1];
    const auto axes = constant(n.name + ".axes", at::tensor(std::vector<int64_t>{2, 3}, at::kLong));
    std::string g4;
    if (quantized(gate)) {
      op("Unsqueeze", {name_of(gate), axes}, name_of(gate) + ".4d");
      g4 = name_of(gate) + ".4d.f";
      dequantize_linear(name_of(gate) + ".4d", gate, g4);
    } else {
      g4 = name_of(gate) + ".4d";
      op("Unsqueeze", {float_of(gate), axes}, g4);
    }
    const auto y = result_name(n.output);
    op("Mul", {float_of(x), g4}, y);
    produce(n.output, y);
  }

  // Global average pooling, then flattened to (N,C) (after quantization,
  // so the pooling reads DequantizeLinear and feeds QuantizeLinear).
  void add_pool(const Node& n) {
    const auto pooled = n.name + ".pooled";
    op("GlobalAveragePool", {float_of(n.inputs[0])}, pooled);
    std::string flat_in = pooled;
    if (quantized(n.output)) {
      flat_in = pooled + ".q";
      quantize_linear(pooled, n.output, flat_in);
    }
    attr(op("Flatten", {flat_in}, name_of(n.output)), "axis", int64_t(1));
  }

  const Graph& g_;
  std::vector<int> rank_;
  std::set<std::string> shared_;
  onnx::ModelProto model_;
  onnx::GraphProto* graph_ = nullptr;
  std::map<int, std::string> dequantized_;
  std::map<int, int> dequantize_source_;
  std::map<int, std::string> arith_dequantized_;  // float value -> the quantized value it dequantizes
  std::map<int, std::pair<std::string, std::string>> qparams_;
};

}  // namespace

std::vector<std::string> write_onnx(const Graph& graph, const std::string& dir, std::vector<std::string>& warnings) {
  const auto narrow = sub_byte_layers(graph);
  if (!narrow.empty())
    warnings.push_back("onnx: weights below 8 bits are stored widened to int8 (ONNX INT4 needs opset 21; this "
                       "build's ONNX 1.12 supports opset " + std::to_string(kOpset) + "): " + narrow);
  const auto general = general_grid_layers(graph);
  if (!general.empty())
    warnings.push_back("onnx: weights on grouped or offset grids are stored dequantized as fp32 (opset " +
                       std::to_string(kOpset) + " has no block-wise DequantizeLinear; the safetensors export keeps "
                       "their codes): " + general);
  auto model = OnnxWriter(graph).build();
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    QNAS_THROW("onnx export: the model fails onnx::checker: ", e.what());
  }
  const std::string path = dir + "/model.onnx";
  std::ofstream out(path, std::ios::binary);
  QNAS_CHECK(out.good() && model.SerializeToOstream(&out), "onnx export: cannot write '", path, "'");
  return {"model.onnx"};
}

}  // namespace qnas::deploy::detail
