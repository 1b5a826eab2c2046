#include "supernet/mbv3.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "src/core/error.hpp"
#include "supernet/bn_act.hpp"
#include "supernet/depthwise.hpp"

namespace qnas::supernet {

// --- ElasticBlock ------------------------------------------------------------

ElasticBlockImpl::ElasticBlockImpl(int64_t in_, int64_t out_, int64_t stride_, bool se_, Act act_,
                                   const std::vector<int>& kernels, const std::vector<int>& expands,
                                   bool kernel_transform)
    : in(in_), out(out_), stride(stride_), se(se_), residual(stride_ == 1 && in_ == out_), act(act_),
      kernels_(sorted(kernels)), kernel_transform_(kernel_transform) {
  mid_max_ = 0;
  for (int e : expands) mid_max_ = std::max(mid_max_, mid_channels(e));
  se_max_ = se_channels(mid_max_);
  const int64_t kmax = kernels_.back();
  pw1_w_ = register_parameter("pw1_weight", at::empty({mid_max_, in, 1, 1}));
  pw1_bn_ = register_bn(*this, "pw1_bn", mid_max_);
  dw_w_ = register_parameter("dw_weight", at::empty({mid_max_, 1, kmax, kmax}));
  dw_bn_ = register_bn(*this, "dw_bn", mid_max_);
  if (se) {
    se_rw_ = register_parameter("se_reduce_weight", at::empty({se_max_, mid_max_, 1, 1}));
    se_rb_ = register_parameter("se_reduce_bias", at::zeros({se_max_}));
    se_ew_ = register_parameter("se_expand_weight", at::empty({mid_max_, se_max_, 1, 1}));
    se_eb_ = register_parameter("se_expand_bias", at::zeros({mid_max_}));
  }
  pw2_w_ = register_parameter("pw2_weight", at::empty({out, mid_max_, 1, 1}));
  pw2_bn_ = register_bn(*this, "pw2_bn", out);
  if (kernel_transform_) {
    for (size_t i = 0; i + 1 < kernels_.size(); ++i) {
      const int k = kernels_[i];
      transform_[k] = register_parameter(
          "transform_" + std::to_string(kernels_[i + 1]) + "to" + std::to_string(k), at::eye(k * k));
    }
  }
  at::NoGradGuard no_grad;
  for (at::Tensor* w : {&pw1_w_, &dw_w_, &pw2_w_}) init_conv(*w);
  if (se) {
    init_conv(se_rw_);
    init_conv(se_ew_);
  }
}

int64_t ElasticBlockImpl::mid_channels(int expand) const { return make_divisible(double(in * expand)); }

void ElasticBlockImpl::zero_last_bn() {
  at::NoGradGuard no_grad;
  pw2_bn_.gamma.zero_();
}

at::Tensor ElasticBlockImpl::dw_kernel(int64_t mid, int k) const {
  QNAS_CHECK(std::find(kernels_.begin(), kernels_.end(), k) != kernels_.end(), "kernel ", k,
             " is not a choice of this block; expected one of ", nlohmann::json(kernels_).dump());
  at::Tensor w = lead(dw_w_, mid);
  if (!kernel_transform_) return centre_crop(w, k);
  // From the largest kernel down, each step crops to the next smaller size
  // and mixes the k*k taps with that transition's matrix (shared by channels).
  for (size_t i = kernels_.size() - 1; i > 0 && kernels_[i] > k; --i) {
    const int target = kernels_[i - 1];
    const auto crop = centre_crop(w, target).reshape({mid, target * target});
    w = at::linear(crop, transform_.at(target)).reshape({mid, 1, target, target});
  }
  return w;
}

at::Tensor ElasticBlockImpl::bn_act(const at::Tensor& x, const ElasticBN& p, int64_t c, Act a) const {
  return elastic_bn_act(x, p, c, a, is_training());
}

at::Tensor ElasticBlockImpl::forward(const at::Tensor& x, int kernel, int expand, const std::string& name,
                                     const FakeQuant& fq) const {
  const int64_t mid = mid_channels(expand);
  const auto conv = [&](const char* unit, const at::Tensor& in, const at::Tensor& w) {
    return conv_same(fq.input(name + unit, in), fq.weight(name + unit, w), {}, 1, 1);
  };
  at::Tensor y = bn_act(conv(".pw1", x, lead(pw1_w_, mid)), pw1_bn_, mid, act);
  // Training uses the hand-written depthwise backward (supernet/depthwise.hpp).
  const at::Tensor kw = fq.weight(name + ".dw", dw_kernel(mid, kernel));
  y = fq.input(name + ".dw", y);
  y = at::GradMode::is_enabled() ? depthwise_conv2d(y, kw, stride) : conv_same(y, kw, {}, stride, mid);
  y = bn_act(y, dw_bn_, mid, act);
  if (se) {
    const int64_t s = se_channels(mid);
    const auto rw = lead(se_rw_, s).narrow(1, 0, mid), ew = lead(se_ew_, mid).narrow(1, 0, s);
    if (!fq.enabled()) {
      y = squeeze_excite(y, rw, lead(se_rb_, s), ew, lead(se_eb_, mid));
    } else {  // the deployed SE: two linear layers on the pooled vector, each input quantized
      const auto linear = [&](const char* unit, const at::Tensor& in, const at::Tensor& w, const at::Tensor& b) {
        return at::linear(fq.input(name + unit, in), fq.weight(name + unit, w.flatten(1)), b);
      };
      auto g = at::relu(linear(".se_reduce", y.mean({2, 3}), rw, lead(se_rb_, s)));
      g = at::hardsigmoid(linear(".se_expand", g, ew, lead(se_eb_, mid)));
      y = scale_channels(y, g);
    }
  }
  y = bn_act(conv(".pw2", y, pw2_w_.narrow(1, 0, mid)), pw2_bn_, out, Act::kNone);
  return residual ? y + x : y;
}

std::vector<UnitDesc> ElasticBlockImpl::unit_descs(const std::string& name, int kernel, int expand, int64_t in_h,
                                                   int64_t in_w) const {
  const int64_t mid = mid_channels(expand);
  const UnitDesc dw{name + ".dw", "dwconv", mid, mid, kernel, stride, true, act, in_h, in_w};
  std::vector<UnitDesc> d{{name + ".pw1", "conv", in, mid, 1, 1, true, act, in_h, in_w}, dw};
  if (se) {
    const int64_t s = se_channels(mid);
    d.push_back({name + ".se_reduce", "linear", mid, s, 1, 1, false, Act::kRelu, 1, 1});
    d.push_back({name + ".se_expand", "linear", s, mid, 1, 1, false, Act::kHsigmoid, 1, 1});
  }
  d.push_back({name + ".pw2", "conv", mid, out, 1, 1, true, Act::kNone, dw.out_h(), dw.out_w()});
  return d;
}

int ElasticBlockImpl::extract(SubnetBuilder& b, int x, const std::string& name, int kernel, int expand,
                              int64_t& h, int64_t& w) const {
  const int64_t mid = mid_channels(expand);
  const auto d = unit_descs(name, kernel, expand, h, w);
  h = d[1].out_h();
  w = d[1].out_w();
  int y = b.unit(d[0], [&] { return bn_unit_weights(lead(pw1_w_, mid), pw1_bn_, mid); }, x);
  y = b.unit(d[1], [&] { return bn_unit_weights(dw_kernel(mid, kernel), dw_bn_, mid); }, y);
  if (se) {
    const int64_t s = d[2].out_channels;
    int g = b.mean(y, name + ".dw.pool");
    const auto reduce = [&] { return biased_unit_weights(lead(se_rw_, s, mid).reshape({s, mid}), lead(se_rb_, s)); };
    const auto expand = [&] { return biased_unit_weights(lead(se_ew_, mid, s).reshape({mid, s}), lead(se_eb_, mid)); };
    g = b.unit(d[3], expand, b.unit(d[2], reduce, g));
    y = b.gate(y, g, name + ".dw.se_mul");
  }
  y = b.unit(d.back(), [&] { return bn_unit_weights(pw2_w_.narrow(1, 0, mid), pw2_bn_, out); }, y);
  return residual ? b.add(y, x, name + ".pw2.add") : y;
}

// --- MBV3Supernet ------------------------------------------------------------

MBV3SupernetImpl::MBV3SupernetImpl(const core::MBV3Config& cfg, const core::QuantConfig& quant,
                                   const InputShape& input)
    : cfg_(cfg), input_(input) {
  QNAS_CHECK(!cfg.stages.empty(), "supernet.stages: expected at least one stage");
  stem_w_ = register_parameter("stem_weight", at::empty({cfg.stem_width, input.channels, 3, 3}));
  stem_bn_ = register_bn(*this, "stem_bn", cfg.stem_width);
  int64_t in = cfg.stem_width;
  for (size_t s = 0; s < cfg.stages.size(); ++s) {
    const auto& st = cfg.stages[s];
    std::vector<ElasticBlock> blocks;
    for (int b = 0; b < max_of(cfg.depth); ++b) {
      ElasticBlock block(in, st.width, b == 0 ? st.stride : 1, st.se, parse_act(st.act), cfg.kernel,
                         cfg.expand, cfg.kernel_transform);
      blocks.push_back(register_module("s" + std::to_string(s) + "_b" + std::to_string(b), block));
      in = st.width;
    }
    stages_.push_back(std::move(blocks));
  }
  head_w_ = register_parameter("head_weight", at::empty({cfg.head_width, in, 1, 1}));
  head_bn_ = register_bn(*this, "head_bn", cfg.head_width);
  mix_w_ = register_parameter("mix_weight", at::empty({cfg.feature_width, cfg.head_width}));
  mix_b_ = register_parameter("mix_bias", at::empty({cfg.feature_width}));
  cls_w_ = register_parameter("classifier_weight", at::empty({input.classes, cfg.feature_width}));
  cls_b_ = register_parameter("classifier_bias", at::empty({input.classes}));
  init_weights();
  build_space(quant);
}

void MBV3SupernetImpl::init_weights() {
  at::NoGradGuard no_grad;
  init_conv(stem_w_);
  init_conv(head_w_);
  init_linear(mix_w_, mix_b_);
  init_linear(cls_w_, cls_b_);
  for (auto& stage : stages_)
    for (auto& b : stage)
      if (b->residual) b->zero_last_bn();
}

void MBV3SupernetImpl::build_space(const core::QuantConfig& quant) {
  space_.supernet = "mbv3";
  const auto depths = sorted(cfg_.depth), kernels = sorted(cfg_.kernel), expands = sorted(cfg_.expand);
  auto& layers = space_.layer_descs;
  layers.push_back({"stem", "stem", "stem", "", 0});
  for (size_t s = 0; s < stages_.size(); ++s) {
    const std::string stage = "s" + std::to_string(s), depth_var = stage + ".depth";
    space_.variables.push_back({depth_var, depths, "", "depth", "", 0, {}});
    for (size_t b = 0; b < stages_[s].size(); ++b) {
      const auto [cond, min] = block_activity(depth_var, depths, b);
      const std::string name = block_name(s, b);
      space_.variables.push_back({name + ".kernel", kernels, "", "kernel", cond, min, {}});
      space_.variables.push_back({name + ".expand", expands, "", "expand", cond, min, {}});
      std::vector<std::string> units{".pw1", ".dw", ".pw2"};
      if (stages_[s][b]->se) units.insert(units.begin() + 2, {".se_reduce", ".se_expand"});
      for (const auto& unit : units) layers.push_back({name + unit, name, stage, cond, min});
    }
  }
  for (const char* layer : {"head.expand", "head.mix"}) layers.push_back({layer, "head", "head", "", 0});
  layers.push_back({"classifier", "classifier", "classifier", "", 0});
  add_policy_variables(space_, quant);

  nlohmann::json stages = nlohmann::json::array();
  for (const auto& st : cfg_.stages)
    stages.push_back({{"width", st.width}, {"stride", st.stride}, {"se", st.se}, {"act", st.act}});
  space_.structure = {{"kind", "mbv3"},
                      {"input", {input_.channels, input_.height, input_.width}},
                      {"classes", input_.classes},
                      {"stem_width", cfg_.stem_width},
                      {"stages", stages},
                      {"kernel", kernels},
                      {"expand", expands},
                      {"depth", depths},
                      {"head_width", cfg_.head_width},
                      {"feature_width", cfg_.feature_width},
                      {"kernel_transform", cfg_.kernel_transform}};
  // Absent means 1, so checkpoints from before the key still load.
  if (cfg_.stem_stride != 1) space_.structure["stem_stride"] = cfg_.stem_stride;
}

MBV3Arch MBV3SupernetImpl::arch_of(const SubnetSpec& spec) const {
  validate_spec(space_, spec, "subnet spec");
  MBV3Arch a;
  for (size_t s = 0; s < stages_.size(); ++s) {
    a.depth.push_back(stage_depth(spec, s));
    a.kernel.push_back(block_choices(spec, s, "kernel"));
    a.expand.push_back(block_choices(spec, s, "expand"));
  }
  return a;
}

at::Tensor MBV3SupernetImpl::stem(const at::Tensor& x, const SubnetSpec& spec) {
  const auto fq = fake_quant(spec);
  const auto y = elastic_bn_act(conv_same(fq.input("stem", x), fq.weight("stem", stem_w_), {}, cfg_.stem_stride, 1), stem_bn_,
                                cfg_.stem_width, Act::kHswish, is_training());
  // Channels-last from here on: with one input channel the input's layout is
  // ambiguous and LibTorch would keep NCHW (2x slower for these convs).
  return y.contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor MBV3SupernetImpl::forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) {
  const MBV3Arch a = arch_of(spec);
  const auto fq = fake_quant(spec);
  at::Tensor y = stem;
  for (size_t s = 0; s < stages_.size(); ++s)
    for (int b = 0; b < a.depth[s]; ++b)
      y = stages_[s][size_t(b)]->forward(y, a.kernel[s][size_t(b)], a.expand[s][size_t(b)], block_name(s, size_t(b)), fq);
  y = elastic_bn_act(conv_same(fq.input("head.expand", y), fq.weight("head.expand", head_w_), {}, 1, 1), head_bn_,
                     cfg_.head_width, Act::kHswish, is_training());
  y = at::hardswish(at::linear(fq.input("head.mix", y.mean({2, 3})), fq.weight("head.mix", mix_w_), mix_b_));
  y = classifier_dropout(y, cfg_.dropout, is_training());
  return at::linear(fq.input("classifier", y), fq.weight("classifier", cls_w_), cls_b_);
}

UnitDesc MBV3SupernetImpl::stem_desc() const {
  return {"stem", "conv", input_.channels, cfg_.stem_width, 3, cfg_.stem_stride, true, Act::kHswish, input_.height,
          input_.width};
}

std::vector<UnitDesc> MBV3SupernetImpl::head_descs(int64_t h, int64_t w) const {
  const int64_t last = stages_.back().front()->out;
  return {{"head.expand", "conv", last, cfg_.head_width, 1, 1, true, Act::kHswish, h, w},
          {"head.mix", "linear", cfg_.head_width, cfg_.feature_width, 1, 1, false, Act::kHswish, 1, 1},
          {"classifier", "linear", cfg_.feature_width, input_.classes, 1, 1, false, Act::kNone, 1, 1}};
}

void MBV3SupernetImpl::build(SubnetBuilder& b) const {
  const MBV3Arch a = arch_of(b.spec());
  const auto stem = stem_desc();
  int y = b.unit(stem, [&] { return bn_unit_weights(stem_w_, stem_bn_, cfg_.stem_width); }, b.input());
  int64_t h = stem.out_h(), w = stem.out_w();
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (int i = 0; i < a.depth[s]; ++i) {
      y = stages_[s][size_t(i)]->extract(b, y, block_name(s, size_t(i)), a.kernel[s][size_t(i)],
                                         a.expand[s][size_t(i)], h, w);
    }
  }
  const auto hd = head_descs(h, w);
  y = b.mean(b.unit(hd[0], [&] { return bn_unit_weights(head_w_, head_bn_, cfg_.head_width); }, y), "head.pool");
  y = b.unit(hd[1], [&] { return biased_unit_weights(mix_w_, mix_b_); }, y);
  if (cfg_.dropout > 0) y = b.dropout(y, cfg_.dropout);
  b.unit(hd[2], [&] { return biased_unit_weights(cls_w_, cls_b_); }, y);
}

Supernet make_mbv3(const core::Config& cfg, const InputShape& input) {
  return std::make_shared<MBV3SupernetImpl>(cfg.supernet.mbv3, cfg.quant, input);
}

void tiny_mbv3(core::Config& cfg) {
  cfg.supernet.kind = "mbv3";
  auto& m = cfg.supernet.mbv3;
  m.stem_width = 8;
  m.stages = {{16, 2, false, "relu"}, {24, 2, true, "hswish"}};
  m.kernel = {3, 5};
  m.expand = {2, 3};
  m.depth = {1, 2};
  m.head_width = 48;
  m.feature_width = 32;
}

}  // namespace qnas::supernet
