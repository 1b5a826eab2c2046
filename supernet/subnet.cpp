#include "supernet/subnet.hpp"

#include <ATen/ATen.h>
#include <torch/nn/functional/dropout.h>

#include "src/core/error.hpp"

namespace qnas::supernet {

// --- ConvUnit ----------------------------------------------------------------

ConvUnitImpl::ConvUnitImpl(UnitDesc desc) : desc_(std::move(desc)) {
  const auto& d = desc_;
  if (d.kind == "linear") {
    weight = register_parameter("weight", at::zeros({d.out_channels, d.in_channels}));
  } else {
    weight = register_parameter(
        "weight", at::zeros({d.out_channels, d.in_channels / d.groups(), d.kernel, d.kernel}));
  }
  if (d.batch_norm) {
    bn = register_module("bn", torch::nn::BatchNorm2d(
                                   torch::nn::BatchNorm2dOptions(d.out_channels).eps(kBnEps)));
  } else {
    bias = register_parameter("bias", at::zeros({d.out_channels}));
  }
}

at::Tensor ConvUnitImpl::forward(const at::Tensor& x) {
  at::Tensor y = desc_.kind == "linear" ? at::linear(x, weight, bias)
                                        : conv(x, weight, bias, desc_.stride, desc_.padding(), desc_.groups());
  if (bn) y = bn->forward(y);
  return apply_act(y, desc_.act);
}

void ConvUnitImpl::load(const UnitWeights& w) {
  at::NoGradGuard no_grad;
  auto copy = [this](at::Tensor& dst, const at::Tensor& src, const char* what) {
    QNAS_CHECK(src.defined() && src.sizes() == dst.sizes(), "subnet unit '", desc_.name, "': ", what,
               " has shape ", src.defined() ? src.sizes() : at::IntArrayRef{}, "; expected ", dst.sizes());
    dst.copy_(src);
  };
  copy(weight, w.weight, "weight");
  if (bn) {
    copy(bn->weight, w.gamma, "BN weight");
    copy(bn->bias, w.beta, "BN bias");
    copy(bn->running_mean, w.running_mean, "BN running mean");
    copy(bn->running_var, w.running_var, "BN running var");
  } else {
    copy(bias, w.bias, "bias");
  }
}

void ConvUnitImpl::fold_bn() {
  if (!bn) return;
  at::NoGradGuard no_grad;
  const auto inv_std = at::rsqrt(bn->running_var + bn->options.eps());
  const auto scale = bn->weight * inv_std;
  std::vector<int64_t> shape(size_t(weight.dim()), 1);
  shape[0] = desc_.out_channels;
  auto folded_w = weight * scale.reshape(shape);
  auto folded_b = bn->bias - bn->running_mean * scale;
  weight.set_data(folded_w);
  bias = register_parameter("bias", folded_b);
  folded_gamma = bn->weight.detach().clone();
  folded_beta = bn->bias.detach().clone();
  unregister_module("bn");
  bn = nullptr;
}

LayerInfo info_of(const UnitDesc& d) {
  LayerInfo li;
  li.name = d.name;
  li.kind = d.kind;
  li.in_channels = d.in_channels;
  li.out_channels = d.out_channels;
  li.kernel = d.kernel;
  li.stride = d.stride;
  li.groups = d.groups();
  // A linear unit runs once per position (token) of its input.
  li.out_h = d.kind == "linear" ? d.in_h : d.out_h();
  li.out_w = d.kind == "linear" ? d.in_w : d.out_w();
  li.weight_numel = d.out_channels * (d.in_channels / d.groups()) * d.kernel * d.kernel;
  li.bias_numel = d.out_channels;  // the deployed (BN-folded) form always has one
  return li;
}

LayerInfo ConvUnitImpl::info() const {
  LayerInfo li = info_of(desc_);
  QNAS_CHECK(li.weight_numel == weight.numel(), "unit '", desc_.name, "': weight of ", weight.numel(),
             " elements; its description implies ", li.weight_numel);
  return li;
}

// --- Subnet ------------------------------------------------------------------

SubnetImpl::SubnetImpl(SubnetSpec spec, std::vector<ConvUnit> units, std::vector<SubnetOp> ops,
                       std::vector<LayerInfo> layers)
    : spec_(std::move(spec)), units_(std::move(units)), ops_(std::move(ops)), layers_(std::move(layers)) {
  for (size_t i = 0; i < units_.size(); ++i) {
    const auto& name = units_[i]->desc().name;
    QNAS_CHECK(unit_index_.emplace(name, i).second, "subnet: two units named '", name, "'");
    register_module("unit" + std::to_string(i), units_[i]);
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    auto& op = ops_[i];
    for (int v : op.inputs)
      QNAS_CHECK(v >= 0 && size_t(v) <= i, "subnet: op ", i, " ('", op.name, "') reads value ", v,
                 "; expected one written before it (0 ..", i, ")");
    if (op.weight.defined()) op.weight = register_parameter("op" + std::to_string(i) + "_weight", op.weight);
    if (op.bias.defined()) op.bias = register_parameter("op" + std::to_string(i) + "_bias", op.bias);
  }
  QNAS_CHECK(!ops_.empty(), "subnet: no ops");
}

const ConvUnit& SubnetImpl::unit(const std::string& name) const {
  const auto it = unit_index_.find(name);
  QNAS_CHECK(it != unit_index_.end(), "subnet: no unit named '", name, "'");
  return units_[it->second];
}

at::Tensor SubnetImpl::forward(const at::Tensor& x) {
  std::vector<at::Tensor> v{x};
  v.reserve(ops_.size() + 1);
  for (const auto& op : ops_) {
    const auto& a = v[size_t(op.inputs[0])];
    switch (op.kind) {
      case SubnetOpKind::kUnit: {
        at::Tensor y = units_[unit_index_.at(op.name)]->forward(a);
        // Channels-last from the first conv on: with one input channel the
        // input's layout is ambiguous and LibTorch would keep NCHW (2x slower).
        if (y.dim() == 4) y = y.contiguous(at::MemoryFormat::ChannelsLast);
        v.push_back(y);
        break;
      }
      case SubnetOpKind::kAdd: v.push_back(a + v[size_t(op.inputs[1])]); break;
      case SubnetOpKind::kGate: v.push_back(scale_channels(a, v[size_t(op.inputs[1])])); break;
      case SubnetOpKind::kMean: v.push_back(a.mean({2, 3})); break;
      case SubnetOpKind::kAct: v.push_back(apply_act(a, op.act)); break;
      case SubnetOpKind::kDropout:
        v.push_back(torch::nn::functional::dropout(
            a, torch::nn::functional::DropoutFuncOptions().p(op.p).training(is_training())));
        break;
      case SubnetOpKind::kTokens: v.push_back(to_tokens(a)); break;
      case SubnetOpKind::kEmbed: v.push_back(embed_tokens(a, op.weight, op.bias)); break;
      case SubnetOpKind::kLayerNorm: v.push_back(supernet::layer_norm(a, op.weight, op.bias)); break;
      case SubnetOpKind::kAttention: v.push_back(supernet::attention(a, op.heads, op.head_dim)); break;
      case SubnetOpKind::kTokenMean: v.push_back(a.mean(1)); break;
      case SubnetOpKind::kClassToken: v.push_back(a.select(1, 0)); break;
    }
  }
  return v.back();
}

std::vector<LayerInfo> SubnetImpl::layer_infos() const {
  std::vector<LayerInfo> out;
  for (const auto& l : layers_) {
    if (!l.compressible) {
      out.push_back(l);
      continue;
    }
    out.push_back(unit(l.name)->info());
    out.back().policy = policy(l.name);
  }
  return out;
}

void SubnetImpl::fold_bn() {
  for (auto& u : units_) u->fold_bn();
  bn_folded_ = true;
}

const quant::LayerPolicy& SubnetImpl::policy(const std::string& unit) const {
  const auto it = spec_.policy.find(unit);
  QNAS_CHECK(it != spec_.policy.end(), "subnet: no policy for layer '", unit, "'; expected one per compressible layer");
  return it->second;
}

void SubnetImpl::set_policies(const std::map<std::string, quant::LayerPolicy>& policy) {
  QNAS_CHECK(policy.size() == spec_.policy.size(), "subnet: ", policy.size(), " policies for ", spec_.policy.size(),
             " compressible layers; expected one per layer");
  for (const auto& [layer, p] : policy)
    QNAS_CHECK(spec_.policy.count(layer), "subnet: policy for layer '", layer, "', which this subnet does not have");
  spec_.policy = policy;
}

// --- SubnetBuilder -----------------------------------------------------------

int SubnetBuilder::push(SubnetOp op) {
  ops_.push_back(std::move(op));
  return int(ops_.size());
}

int SubnetBuilder::unit(const UnitDesc& desc, const std::function<UnitWeights()>& weights, int x) {
  layers_.push_back(info_of(desc));
  if (!shapes_only_) {
    ConvUnit u(desc);
    u->load(weights());
    units_.push_back(u);
  }
  return push({SubnetOpKind::kUnit, {x}, desc.name});
}

int SubnetBuilder::add(int a, int b, const std::string& name) { return push({SubnetOpKind::kAdd, {a, b}, name}); }
int SubnetBuilder::gate(int x, int g, const std::string& name) { return push({SubnetOpKind::kGate, {x, g}, name}); }
int SubnetBuilder::mean(int x, const std::string& name) { return push({SubnetOpKind::kMean, {x}, name}); }
int SubnetBuilder::act(int x, Act a, const std::string& name) { return push({SubnetOpKind::kAct, {x}, name, a}); }
int SubnetBuilder::dropout(int x, double p) { return push({SubnetOpKind::kDropout, {x}, "dropout", Act::kNone, p}); }

namespace {
// The cost entry of a transformer op that is no compressible layer (fp32).
LayerInfo fp32_part(const std::string& kind, const std::string& name, int64_t channels, int64_t weight_numel,
                    int64_t bias_numel) {
  LayerInfo l;
  l.name = name;
  l.kind = kind;
  l.in_channels = l.out_channels = channels;
  l.weight_numel = weight_numel;
  l.bias_numel = bias_numel;
  l.compressible = false;
  return l;
}

// An op on value x carrying its own parameters (kEmbed, kLayerNorm).
SubnetOp op_with_params(SubnetOpKind kind, int x, const std::string& name, at::Tensor weight, at::Tensor bias) {
  SubnetOp op{kind, {x}, name};
  op.weight = std::move(weight);
  op.bias = std::move(bias);
  return op;
}
}  // namespace

at::Tensor SubnetBuilder::own(const at::Tensor& t) const {
  if (shapes_only_ || !t.defined()) return {};
  return t.detach().clone();
}

int SubnetBuilder::tokens(int x, const std::string& name) { return push({SubnetOpKind::kTokens, {x}, name}); }
int SubnetBuilder::embed(int x, const at::Tensor& positions, const at::Tensor& class_token, const std::string& name) {
  const int64_t c = positions.size(-1);
  layers_.push_back(fp32_part("embed", name, c, positions.numel(), class_token.defined() ? c : 0));
  return push(op_with_params(SubnetOpKind::kEmbed, x, name, own(positions), own(class_token)));
}
int SubnetBuilder::layer_norm(int x, const at::Tensor& gamma, const at::Tensor& beta, const std::string& name) {
  layers_.push_back(fp32_part("layer_norm", name, gamma.size(0), gamma.numel(), beta.numel()));
  return push(op_with_params(SubnetOpKind::kLayerNorm, x, name, own(gamma), own(beta)));
}
int SubnetBuilder::attention(int qkv, int64_t heads, int64_t head_dim, int64_t tokens, const std::string& name) {
  auto info = fp32_part("attention", name, heads * head_dim, 0, 0);
  info.out_h = tokens;
  layers_.push_back(info);
  SubnetOp op{SubnetOpKind::kAttention, {qkv}, name};
  op.heads = heads;
  op.head_dim = head_dim;
  return push(std::move(op));
}
int SubnetBuilder::token_mean(int x, const std::string& name) { return push({SubnetOpKind::kTokenMean, {x}, name}); }
int SubnetBuilder::class_token(int x, const std::string& name) {
  return push({SubnetOpKind::kClassToken, {x}, name});
}

std::vector<LayerInfo> SubnetBuilder::layer_infos() const {
  std::vector<LayerInfo> out = layers_;
  for (auto& l : out) {
    if (!l.compressible) continue;
    const auto it = spec_.policy.find(l.name);
    QNAS_CHECK(it != spec_.policy.end(), "subnet: no policy for layer '", l.name,
               "'; expected one per compressible layer");
    l.policy = it->second;
  }
  return out;
}

Subnet SubnetBuilder::finish() {
  QNAS_CHECK(!shapes_only_, "subnet: a shapes-only builder has no weights to finish a subnet with");
  auto subnet = std::make_shared<SubnetImpl>(std::move(spec_), std::move(units_), std::move(ops_), std::move(layers_));
  subnet->eval();
  return subnet;
}

}  // namespace qnas::supernet
