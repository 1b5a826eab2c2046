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
                                        : conv_same(x, weight, bias, desc_.stride, desc_.groups());
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
  li.out_h = d.kind == "linear" ? 1 : d.out_h();
  li.out_w = d.kind == "linear" ? 1 : d.out_w();
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

// --- MBBlock -----------------------------------------------------------------

MBBlockImpl::MBBlockImpl(ConvUnit pw1_, ConvUnit dw_, ConvUnit pw2_, bool residual_)
    : pw1(register_module("pw1", std::move(pw1_))),
      dw(register_module("dw", std::move(dw_))),
      pw2(register_module("pw2", std::move(pw2_))),
      residual(residual_) {}

void MBBlockImpl::set_se(ConvUnit reduce, ConvUnit expand) {
  se_reduce = register_module("se_reduce", std::move(reduce));
  se_expand = register_module("se_expand", std::move(expand));
}

at::Tensor MBBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = dw->forward(pw1->forward(x));
  if (has_se()) y = scale_channels(y, se_expand->forward(se_reduce->forward(y.mean({2, 3}))));
  y = pw2->forward(y);
  return residual ? y + x : y;
}

std::vector<ConvUnit> MBBlockImpl::units() const {
  if (has_se()) return {pw1, dw, se_reduce, se_expand, pw2};
  return {pw1, dw, pw2};
}

// --- Subnet ------------------------------------------------------------------

void SubnetImpl::fold_bn() {
  for (auto& u : units()) u->fold_bn();
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
  for (const auto& b : blocks)
    for (auto& u : b->units()) out.push_back(u);
  out.insert(out.end(), {head_expand, mix, classifier});
  return out;
}

std::vector<LayerInfo> MBV3SubnetImpl::layer_infos() const {
  std::vector<LayerInfo> out;
  for (const auto& u : units()) {
    out.push_back(u->info());
    out.back().policy = policy(u->desc().name);
  }
  return out;
}

}  // namespace qnas::supernet
