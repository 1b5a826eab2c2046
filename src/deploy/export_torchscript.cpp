// TorchScript export: a torch::jit::Module assembled here, with the ONEDNN
// packed params of the int8 layers and the fp32 tensors of the others as
// attributes, and `forward` written as TorchScript source, one line per node.
// Linears run as 1x1 convolutions, or quantized::linear on tokens (as in
// the int8 runtime); h-swish uses quantized::hardswish and GELU aten::gelu
// on its quantized input's grid (the runtime's byte table is not a
// TorchScript op).
#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/custom_class.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/deploy/export_formats.hpp"
#include "src/deploy/onednn_packing.hpp"

namespace qnas::deploy::detail {

namespace {

// TorchScript compiled from C++ has no Python resolver: torch.channels_last
// and torch.quint8 are not names there, so enum values go in as integers.
const std::string kChannelsLast = std::to_string(int(c10::MemoryFormat::ChannelsLast));
const std::string kQUInt8 = std::to_string(int(c10::ScalarType::QUInt8));

// Names the forward source may use: `aten.X` and `quantized.X` are the
// operators aten::X and quantized::X (C++'s default resolver knows only
// `torch`). The saved module prints them as aten.X / quantized.X,
// which torch::jit::load and Python's torch.jit.load both read.
struct OpsResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "aten" || name == "quantized") return std::make_shared<torch::jit::BuiltinModule>(name);
    return nullptr;
  }
};

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";  // a float literal
  return s;
}

std::string ident(const std::string& name) {
  std::string s = name;
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

class ScriptWriter {
 public:
  ScriptWriter(const Graph& g, torch::jit::Module& m) : g_(g), m_(m), rank_(g.ranks()) {}

  std::string source() {
    const auto& in = g_.input_desc;
    src_ << "def forward(self, pixels: Tensor) -> Tensor:\n";
    line(g_.input, "((pixels - " + buffer("input.mean", in.mean_tensor()) + ") / " + buffer("input.std", in.std_tensor()) +
                       ").contiguous(memory_format=" + kChannelsLast + ")");
    for (const auto& n : g_.nodes) add(n);
    src_ << "    return " << var(g_.output) << "\n";
    return src_.str();
  }

 private:
  std::string var(int v) const { return "v" + std::to_string(v); }
  const QParams& q(int v) const { return g_.values[size_t(v)].q; }
  std::string qargs(int v) const { return num(q(v).scale) + ", " + std::to_string(q(v).zero_point); }
  void line(int v, const std::string& expr) { src_ << "    " << var(v) << " = " << expr << "\n"; }

  std::string act(const std::string& x, supernet::Act a) const {
    switch (a) {
      case supernet::Act::kNone: return x;
      case supernet::Act::kRelu: return "aten.relu(" + x + ")";
      case supernet::Act::kHswish: return "aten.hardswish(" + x + ")";
      case supernet::Act::kHsigmoid: return "aten.hardsigmoid(" + x + ")";
      case supernet::Act::kGelu: return "aten.gelu(" + x + ")";
    }
    return x;
  }

  void add(const Node& n) {
    const bool q_out = g_.values[size_t(n.output)].quantized;
    const auto in = [&](size_t i) { return var(n.inputs[i]); };
    switch (n.kind) {
      case OpKind::kConv:
      case OpKind::kLinear:
        if (n.dynamic) return dynamic_layer(n);
        return q_out ? int8_layer(n) : fp32_layer(n);
      case OpKind::kAct:
        if (!q_out) return line(n.output, act(in(0), n.act));
        if (n.act == supernet::Act::kHswish) return line(n.output, "quantized.hardswish(" + in(0) + ", " + qargs(n.output) + ")");
        return line(n.output, act(in(0), n.act));  // h-sigmoid: fixed output parameters
      case OpKind::kAdd:
        return line(n.output, q_out ? "quantized.add(" + in(0) + ", " + in(1) + ", " + qargs(n.output) + ")"
                                    : in(0) + " + " + in(1));
      case OpKind::kMul: {
        const auto gate = in(1) + ".reshape([" + in(1) + ".size(0), " + in(1) + ".size(1), 1, 1])";
        if (!q_out) return line(n.output, in(0) + " * " + gate);
        return line(n.output, "quantized.mul(" + in(0) + ", " + gate + ".expand_as(" + in(0) +
                                  ").contiguous(memory_format=" + kChannelsLast + "), " + qargs(n.output) + ")");
      }
      case OpKind::kMean:
        if (!q_out) return line(n.output, in(0) + ".mean([2, 3])");
        return line(n.output, "aten.adaptive_avg_pool2d(" + in(0) + ", [1, 1]).reshape([" + in(0) + ".size(0), " +
                                  in(0) + ".size(1)])");
      case OpKind::kQuantize:
        return line(n.output, "aten.quantize_per_tensor(" + in(0) + ", " + qargs(n.output) + ", " + kQUInt8 + ")");
      case OpKind::kDequantize: return line(n.output, in(0) + ".dequantize()");
      case OpKind::kScale:
        return line(n.output, in(0) + " * " + buffer(n.name + ".channel_scale", n.channel_scale.contiguous()));
      case OpKind::kTokens:
        return line(n.output, in(0) + ".permute([0, 2, 3, 1]).reshape([" + in(0) + ".size(0), -1, " + in(0) + ".size(1)])");
      case OpKind::kEmbed: return embed(n);
      case OpKind::kLayerNorm:
        return line(n.output, "aten.layer_norm(" + in(0) + ", [" + std::to_string(n.weight.size(0)) + "], " +
                                  buffer(n.name + ".weight", n.weight) + ", " + buffer(n.name + ".bias", n.bias) + ", " +
                                  num(supernet::kLnEps) + ", False)");
      case OpKind::kAttention: return attention(n);
      case OpKind::kTokenMean: return line(n.output, in(0) + ".mean([1])");
      case OpKind::kClassToken: return line(n.output, in(0) + ".select(1, 0)");
    }
  }

  // A tensor attribute of the module, in the layout given (a conv's weight
  // channels-last); returns its name in the source.
  std::string buffer(const std::string& name, const at::Tensor& t) {
    const std::string attr = ident(name);
    m_.register_buffer(attr, t);
    return "self." + attr;
  }

  void embed(const Node& n) {
    const auto x = var(n.inputs[0]);
    std::string tokens = x;
    if (n.bias.defined())
      tokens = "aten.cat([" + buffer(n.name + ".class_token", n.bias.reshape({1, 1, -1})) + ".expand([" + x +
               ".size(0), 1, " + std::to_string(n.bias.size(0)) + "]), " + x + "], 1)";
    line(n.output, tokens + " + " + buffer(n.name + ".positions", n.weight.unsqueeze(0)));
  }

  // supernet::attention's arithmetic, op for op.
  void attention(const Node& n) {
    const auto x = var(n.inputs[0]), y = var(n.output);
    const auto h = std::to_string(n.heads), d = std::to_string(n.head_dim);
    src_ << "    " << y << "_qkv = " << x << ".reshape([" << x << ".size(0), " << x << ".size(1), 3, " << h << ", " << d
         << "]).permute([2, 0, 3, 1, 4])\n";
    src_ << "    " << y << "_w = aten.softmax(aten.matmul(" << y << "_qkv[0] * " << num(1.0 / std::sqrt(double(n.head_dim)))
         << ", " << y << "_qkv[1].transpose(-2, -1)), -1)\n";
    line(n.output, "aten.matmul(" + y + "_w, " + y + "_qkv[2]).transpose(1, 2).reshape([" + x + ".size(0), " + x +
                       ".size(1), " + std::to_string(n.heads * n.head_dim) + "])");
  }

  void int8_layer(const Node& n) {
    const std::string attr = ident(n.name) + "_packed";
    if (rank_[size_t(n.inputs[0])] == 3) {  // tokens: quantized::linear, as the int8 runtime
      m_.register_attribute(attr, c10::getCustomClassType<LinearPacked>(), c10::IValue(prepack_linear(n)));
      const std::string fn = n.act == supernet::Act::kRelu ? "linear_relu" : "linear";
      return line(n.output, "quantized." + fn + "(" + var(n.inputs[0]) + ", self." + attr + ", " + qargs(n.output) + ")");
    }
    const Node conv = n.kind == OpKind::kLinear ? as_conv1x1(n) : n;
    const auto packed = prepack_conv(conv);
    m_.register_attribute(attr, c10::getCustomClassType<ConvPacked>(), c10::IValue(packed));
    const std::string fn = n.act == supernet::Act::kRelu ? "conv2d_relu" : "conv2d";
    std::string x = var(n.inputs[0]);
    if (n.kind == OpKind::kLinear) x += ".reshape([" + x + ".size(0), " + x + ".size(1), 1, 1])";
    std::string y = "quantized." + fn + "(" + x + ", self." + attr + ", " + qargs(n.output) + ")";
    if (n.kind == OpKind::kLinear) y = "aten.flatten(" + y + ", 1)";
    line(n.output, y);
  }

  // fp32 in and out, the input quantized per call as in the int8 runtime.
  void dynamic_layer(const Node& n) {
    const std::string attr = ident(n.name) + "_packed";
    m_.register_attribute(attr, c10::getCustomClassType<LinearPacked>(), c10::IValue(prepack_linear(n)));
    line(n.output, act("quantized.linear_dynamic(" + var(n.inputs[0]) + ", self." + attr + ", True)", n.act));
  }

  void fp32_layer(const Node& n) {
    auto weight = n.weight.to(at::kFloat).contiguous();
    if (n.kind == OpKind::kConv) weight = weight.contiguous(at::MemoryFormat::ChannelsLast);
    const auto w = buffer(n.name + ".weight", weight), b = buffer(n.name + ".bias", n.bias.to(at::kFloat).contiguous());
    std::string y;
    if (n.kind == OpKind::kConv) {
      const auto s = std::to_string(n.stride), p = std::to_string(n.padding);
      y = "aten.conv2d(" + var(n.inputs[0]) + ", " + w + ", " + b + ", [" + s + ", " + s + "], [" + p + ", " + p +
          "], [1, 1], " + std::to_string(n.groups) + ")";
    } else {
      y = "aten.linear(" + var(n.inputs[0]) + ", " + w + ", " + b + ")";
    }
    line(n.output, act(y, n.act));
  }

  const Graph& g_;
  torch::jit::Module& m_;
  std::vector<int> rank_;
  std::ostringstream src_;
};

}  // namespace

std::vector<std::string> write_torchscript(const Graph& graph, const std::string& dir,
                                           std::vector<std::string>& warnings) {
  const auto narrow = sub_byte_layers(graph);
  if (!narrow.empty())
    warnings.push_back("torchscript: weights below 8 bits are stored widened (int8 in packed params, fp32 in fp32 "
                       "layers): " + narrow);
  const auto general = general_grid_layers(graph);
  if (!general.empty())
    warnings.push_back("torchscript: weights on grouped or offset grids are stored dequantized as fp32 (the "
                       "safetensors export keeps their codes): " + general);
  torch::jit::Module m("qnas_subnet");
  ScriptWriter writer(graph, m);
  const auto source = writer.source();
  std::ostringstream bytes;  // in memory: LibTorch's file writer terminates when the disk fills
  try {
    m.define(source, std::make_shared<OpsResolver>());
    m.eval();
    m.save(bytes);
  } catch (const c10::Error& e) {
    QNAS_THROW("torchscript export: ", e.what_without_backtrace(), "\nsource:\n", source);
  } catch (const std::exception& e) {  // torch::jit::ErrorReport (compilation) is not a c10::Error
    QNAS_THROW("torchscript export: ", e.what(), "\nsource:\n", source);
  }
  core::write_file_atomic(dir + "/model.pt", bytes.str());
  return {"model.pt"};
}

}  // namespace qnas::deploy::detail
