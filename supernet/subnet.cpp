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
  if (observing_) observer_.observe(x);
  const at::Tensor in = quant::fake_quant_act(x, in_q_);
  const at::Tensor& w = qweight_.defined() ? qweight_ : weight;
  at::Tensor y = desc_.kind == "linear" ? at::linear(in, w, bias)
                                        : conv_same(in, w, bias, desc_.stride, desc_.groups());
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
  QNAS_CHECK(!qweight_.defined(), "subnet unit '", desc_.name,
             "': fold_bn() after quantization; expected fold first, then quantize");
  at::NoGradGuard no_grad;
  const auto inv_std = at::rsqrt(bn->running_var + bn->options.eps());
  const auto scale = bn->weight * inv_std;
  std::vector<int64_t> shape(size_t(weight.dim()), 1);
  shape[0] = desc_.out_channels;
  auto folded_w = weight * scale.reshape(shape);
  auto folded_b = bn->bias - bn->running_mean * scale;
  weight.set_data(folded_w);
  bias = register_parameter("bias", folded_b);
  unregister_module("bn");
  bn = nullptr;
}

void ConvUnitImpl::set_policy(const quant::LayerPolicy& policy) {
  quant::check_policy(policy, "layer '" + desc_.name + "'");
  policy_ = policy;
  at::NoGradGuard no_grad;
  qweight_ = policy.quantizes_weights() ? quant::fake_quant_weight(weight, policy.weight_bits) : at::Tensor();
  in_q_ = quant::ActQParams{};
  observer_.reset();
}

void ConvUnitImpl::finish_calibration() {
  observing_ = false;
  if (!policy_.quantizes_acts()) return;
  QNAS_CHECK(observer_.seen(), "layer '", desc_.name,
             "': activation calibration saw no input; expected at least one batch");
  in_q_ = quant::act_qparams_from_range(observer_.min(), observer_.max(), policy_.act_bits);
}

LayerInfo ConvUnitImpl::info() const {
  LayerInfo li;
  li.name = desc_.name;
  li.kind = desc_.kind;
  li.in_channels = desc_.in_channels;
  li.out_channels = desc_.out_channels;
  li.kernel = desc_.kernel;
  li.stride = desc_.stride;
  li.groups = desc_.groups();
  li.out_h = desc_.kind == "linear" ? 1 : desc_.out_h();
  li.out_w = desc_.kind == "linear" ? 1 : desc_.out_w();
  li.weight_numel = weight.numel();
  li.bias_numel = desc_.out_channels;  // the deployed (BN-folded) form always has one
  li.policy = policy_;
  return li;
}

// --- MBBlock -----------------------------------------------------------------

MBBlockImpl::MBBlockImpl(ConvUnit pw1_, ConvUnit dw_, ConvUnit pw2_, bool residual_)
    : pw1(register_module("pw1", std::move(pw1_))),
      dw(register_module("dw", std::move(dw_))),
      pw2(register_module("pw2", std::move(pw2_))),
      residual(residual_) {}

void MBBlockImpl::set_se(const SEWeights& se) {
  se_reduce_weight = register_parameter("se_reduce_weight", se.reduce_weight.clone());
  se_reduce_bias = register_parameter("se_reduce_bias", se.reduce_bias.clone());
  se_expand_weight = register_parameter("se_expand_weight", se.expand_weight.clone());
  se_expand_bias = register_parameter("se_expand_bias", se.expand_bias.clone());
}

at::Tensor MBBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = dw->forward(pw1->forward(x));
  if (has_se()) y = squeeze_excite(y, se_reduce_weight, se_reduce_bias, se_expand_weight, se_expand_bias);
  y = pw2->forward(y);
  return residual ? y + x : y;
}

std::vector<LayerInfo> MBBlockImpl::se_infos() const {
  if (!has_se()) return {};
  const std::string block = pw1->desc().name.substr(0, pw1->desc().name.rfind('.'));
  auto make = [&](const char* name, const at::Tensor& w) {
    LayerInfo li;
    li.name = block + "." + name;
    li.kind = "se";
    li.in_channels = w.size(1);
    li.out_channels = w.size(0);
    li.weight_numel = w.numel();
    li.bias_numel = w.size(0);
    li.compressible = false;
    return li;
  };
  return {make("se_reduce", se_reduce_weight), make("se_expand", se_expand_weight)};
}

// --- Subnet ------------------------------------------------------------------

void SubnetImpl::fold_bn() {
  for (auto& u : units()) u->fold_bn();
  bn_folded_ = true;
}

void SubnetImpl::quantize_weights() {
  for (auto& u : units()) {
    const auto it = spec_.policy.find(u->desc().name);
    QNAS_CHECK(it != spec_.policy.end(), "subnet: no policy for layer '", u->desc().name, "'");
    u->set_policy(it->second);
  }
}

void SubnetImpl::observe_activations(bool on) {
  for (auto& u : units()) {
    if (!u->policy().quantizes_acts()) continue;
    if (on) u->set_observing(true);
    else u->finish_calibration();
  }
}

MBV3SubnetImpl::MBV3SubnetImpl(SubnetSpec spec, ConvUnit stem_, std::vector<MBBlock> blocks_,
                               ConvUnit head_expand_, ConvUnit mix_, ConvUnit classifier_, double dropout_)
    : stem(register_module("stem", std::move(stem_))),
      head_expand(register_module("head_expand", std::move(head_expand_))),
      mix(register_module("mix", std::move(mix_))),
      classifier(register_module("classifier", std::move(classifier_))),
      blocks(std::move(blocks_)),
      dropout(dropout_) {
  spec_ = std::move(spec);
  for (size_t i = 0; i < blocks.size(); ++i) register_module("block" + std::to_string(i), blocks[i]);
}

at::Tensor MBV3SubnetImpl::forward(const at::Tensor& x) {
  // Channels-last from the stem on (see MBV3SupernetImpl::stem_forward).
  at::Tensor y = stem->forward(x).contiguous(at::MemoryFormat::ChannelsLast);
  for (auto& b : blocks) y = b->forward(y);
  y = head_expand->forward(y).mean({2, 3});
  y = mix->forward(y);
  if (dropout > 0) y = torch::nn::functional::dropout(y, torch::nn::functional::DropoutFuncOptions()
                                                             .p(dropout).training(is_training()));
  return classifier->forward(y);
}

std::vector<ConvUnit> MBV3SubnetImpl::units() const {
  std::vector<ConvUnit> out{stem};
  for (const auto& b : blocks) {
    out.push_back(b->pw1);
    out.push_back(b->dw);
    out.push_back(b->pw2);
  }
  out.insert(out.end(), {head_expand, mix, classifier});
  return out;
}

std::vector<LayerInfo> MBV3SubnetImpl::layer_infos() const {
  std::vector<LayerInfo> out{stem->info()};
  for (const auto& b : blocks) {
    out.push_back(b->pw1->info());
    out.push_back(b->dw->info());
    for (auto& se : b->se_infos()) out.push_back(se);
    out.push_back(b->pw2->info());
  }
  for (const auto& u : {head_expand, mix, classifier}) out.push_back(u->info());
  // Policies come from the spec, whether or not they have been applied yet.
  for (auto& li : out)
    if (li.compressible) li.policy = spec_.policy.at(li.name);
  return out;
}

}  // namespace qnas::supernet
