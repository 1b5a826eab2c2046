#include "supernet/resnet.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "src/core/error.hpp"

namespace qnas::supernet {

namespace {

int64_t percent_of(int64_t channels, int pct) { return make_divisible(double(channels) * pct / 100.0); }

}  // namespace

// --- Bottleneck --------------------------------------------------------------

BottleneckImpl::BottleneckImpl(int64_t in_max, int64_t mid_max, int64_t out_max, int64_t stride_, bool downsample_)
    : stride(stride_), downsample(downsample_) {
  conv1_w_ = register_parameter("conv1_weight", at::empty({mid_max, in_max, 1, 1}));
  bn1_ = register_bn(*this, "bn1", mid_max);
  conv2_w_ = register_parameter("conv2_weight", at::empty({mid_max, mid_max, 3, 3}));
  bn2_ = register_bn(*this, "bn2", mid_max);
  conv3_w_ = register_parameter("conv3_weight", at::empty({out_max, mid_max, 1, 1}));
  bn3_ = register_bn(*this, "bn3", out_max);
  if (downsample) {
    down_w_ = register_parameter("down_weight", at::empty({out_max, in_max, 1, 1}));
    down_bn_ = register_bn(*this, "down_bn", out_max);
  }
  at::NoGradGuard no_grad;
  for (at::Tensor* w : {&conv1_w_, &conv2_w_, &conv3_w_}) init_conv(*w);
  if (downsample) init_conv(down_w_);
}

void BottleneckImpl::zero_last_bn() {
  at::NoGradGuard no_grad;
  bn3_.gamma.zero_();
}

at::Tensor BottleneckImpl::bn_act(const at::Tensor& x, const ElasticBN& p, int64_t c, Act a) const {
  return elastic_bn_act(x, p, c, a, is_training());
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x, const BottleneckWidths& c, const std::string& name,
                                   const FakeQuant& fq) const {
  const auto conv = [&](const char* unit, const at::Tensor& in, const at::Tensor& w, int64_t s) {
    return conv_same(fq.input(name + unit, in), fq.weight(name + unit, w), {}, s, 1);
  };
  at::Tensor y = bn_act(conv(".conv1", x, lead(conv1_w_, c.mid, c.in), 1), bn1_, c.mid, Act::kRelu);
  y = bn_act(conv(".conv2", y, lead(conv2_w_, c.mid, c.mid), stride), bn2_, c.mid, Act::kRelu);
  y = bn_act(conv(".conv3", y, lead(conv3_w_, c.out, c.mid), 1), bn3_, c.out, Act::kNone);
  const at::Tensor shortcut =
      downsample ? bn_act(conv(".down", x, lead(down_w_, c.out, c.in), stride), down_bn_, c.out, Act::kNone) : x;
  return at::relu(y + shortcut);
}

std::vector<UnitDesc> BottleneckImpl::unit_descs(const std::string& name, const BottleneckWidths& c, int64_t in_h,
                                                 int64_t in_w) const {
  const UnitDesc conv2{name + ".conv2", "conv", c.mid, c.mid, 3, stride, true, Act::kRelu, in_h, in_w};
  std::vector<UnitDesc> d{{name + ".conv1", "conv", c.in, c.mid, 1, 1, true, Act::kRelu, in_h, in_w}, conv2,
                          {name + ".conv3", "conv", c.mid, c.out, 1, 1, true, Act::kNone, conv2.out_h(),
                           conv2.out_w()}};
  if (downsample) d.push_back({name + ".down", "conv", c.in, c.out, 1, stride, true, Act::kNone, in_h, in_w});
  return d;
}

int BottleneckImpl::extract(SubnetBuilder& b, int x, const std::string& name, const BottleneckWidths& c, int64_t& h,
                            int64_t& w) const {
  const auto d = unit_descs(name, c, h, w);
  h = d[1].out_h();
  w = d[1].out_w();
  int y = b.unit(d[0], [&] { return bn_unit_weights(lead(conv1_w_, c.mid, c.in), bn1_, c.mid); }, x);
  y = b.unit(d[1], [&] { return bn_unit_weights(lead(conv2_w_, c.mid, c.mid), bn2_, c.mid); }, y);
  y = b.unit(d[2], [&] { return bn_unit_weights(lead(conv3_w_, c.out, c.mid), bn3_, c.out); }, y);
  const int shortcut =
      downsample ? b.unit(d[3], [&] { return bn_unit_weights(lead(down_w_, c.out, c.in), down_bn_, c.out); }, x) : x;
  return b.act(b.add(y, shortcut, name + ".add"), Act::kRelu, name + ".relu");
}

// --- ResNetSupernet ----------------------------------------------------------

ResNetSupernetImpl::ResNetSupernetImpl(const core::ResNetConfig& cfg, const core::QuantConfig& quant,
                                       const InputShape& input)
    : cfg_(cfg), input_(input) {
  QNAS_CHECK(!cfg.stages.empty(), "supernet.stages: expected at least one stage");
  stem_w_ = register_parameter("stem_weight", at::empty({cfg.stem_width, input.channels, 3, 3}));
  stem_bn_ = register_bn(*this, "stem_bn", cfg.stem_width);
  int64_t in = cfg.stem_width;
  for (size_t s = 0; s < cfg.stages.size(); ++s) {
    int64_t out = 0, mid = 0;  // the widest stage and bottleneck any (width, expand) choice gives
    for (int wp : cfg.width_pct) {
      out = std::max(out, stage_channels(s, wp));
      for (int ep : cfg.expand_pct) mid = std::max(mid, percent_of(stage_channels(s, wp), ep));
    }
    std::vector<Bottleneck> blocks;
    for (int b = 0; b < max_of(cfg.depth); ++b) {
      Bottleneck block(in, mid, out, b == 0 ? cfg.stages[s].stride : 1, /*downsample=*/b == 0);
      blocks.push_back(register_module("s" + std::to_string(s) + "_b" + std::to_string(b), block));
      in = out;
    }
    stages_.push_back(std::move(blocks));
  }
  cls_w_ = register_parameter("classifier_weight", at::empty({input.classes, in}));
  cls_b_ = register_parameter("classifier_bias", at::empty({input.classes}));
  at::NoGradGuard no_grad;
  init_conv(stem_w_);
  init_linear(cls_w_, cls_b_);
  for (auto& stage : stages_)
    for (auto& b : stage) b->zero_last_bn();
  build_space(quant);
}

int64_t ResNetSupernetImpl::stage_channels(size_t s, int pct) const { return percent_of(cfg_.stages[s].width, pct); }

std::string ResNetSupernetImpl::width_var(size_t stage) const {
  return cfg_.width_scope == "global" ? "width_pct" : "s" + std::to_string(stage) + ".width_pct";
}

void ResNetSupernetImpl::build_space(const core::QuantConfig& quant) {
  space_.supernet = "resnet";
  const auto depths = sorted(cfg_.depth), widths = sorted(cfg_.width_pct), expands = sorted(cfg_.expand_pct);
  auto& layers = space_.layer_descs;
  layers.push_back({"stem", "stem", "stem", "", 0});
  if (cfg_.width_scope == "global") space_.variables.push_back({width_var(0), widths, "", "width_pct", "", 0, {}});
  for (size_t s = 0; s < stages_.size(); ++s) {
    const std::string stage = "s" + std::to_string(s), depth_var = stage + ".depth";
    if (cfg_.width_scope != "global") space_.variables.push_back({width_var(s), widths, "", "width_pct", "", 0, {}});
    space_.variables.push_back({depth_var, depths, "", "depth", "", 0, {}});
    for (size_t b = 0; b < stages_[s].size(); ++b) {
      const auto [cond, min] = block_activity(depth_var, depths, b);
      const std::string name = block_name(s, b);
      space_.variables.push_back({name + ".expand_pct", expands, "", "expand_pct", cond, min, {}});
      std::vector<std::string> units{".conv1", ".conv2", ".conv3"};
      if (stages_[s][b]->downsample) units.push_back(".down");
      for (const auto& unit : units) layers.push_back({name + unit, name, stage, cond, min});
    }
  }
  layers.push_back({"classifier", "classifier", "classifier", "", 0});
  add_policy_variables(space_, quant);

  nlohmann::json stages = nlohmann::json::array();
  for (const auto& st : cfg_.stages) stages.push_back({{"width", st.width}, {"stride", st.stride}});
  space_.structure = {{"kind", "resnet"},
                      {"input", {input_.channels, input_.height, input_.width}},
                      {"classes", input_.classes},
                      {"stem_width", cfg_.stem_width},
                      {"stem_stride", cfg_.stem_stride},
                      {"stages", stages},
                      {"depth", depths},
                      {"expand_pct", expands},
                      {"width_pct", widths},
                      {"width_scope", cfg_.width_scope}};
}

ResNetArch ResNetSupernetImpl::arch_of(const SubnetSpec& spec) const {
  validate_spec(space_, spec, "subnet spec");
  ResNetArch a;
  for (size_t s = 0; s < stages_.size(); ++s) {
    a.depth.push_back(stage_depth(spec, s));
    a.width_pct.push_back(spec.arch.at(width_var(s)));
    a.expand_pct.push_back(block_choices(spec, s, "expand_pct"));
  }
  return a;
}

BottleneckWidths ResNetSupernetImpl::widths(const ResNetArch& a, size_t s, size_t b, int64_t in) const {
  const int64_t out = stage_channels(s, a.width_pct[s]);
  return {in, percent_of(out, a.expand_pct[s][b]), out};
}

at::Tensor ResNetSupernetImpl::stem(const at::Tensor& x, const SubnetSpec& spec) {
  const auto fq = fake_quant(spec);
  const auto y = elastic_bn_act(conv_same(fq.input("stem", x), fq.weight("stem", stem_w_), {}, cfg_.stem_stride, 1),
                                stem_bn_, cfg_.stem_width, Act::kRelu, is_training());
  // Channels-last from here on (as mbv3: LibTorch keeps NCHW for one input channel).
  return y.contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor ResNetSupernetImpl::forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) {
  const ResNetArch a = arch_of(spec);
  const auto fq = fake_quant(spec);
  at::Tensor y = stem;
  int64_t in = cfg_.stem_width;
  for (size_t s = 0; s < stages_.size(); ++s)
    for (int b = 0; b < a.depth[s]; ++b) {
      const auto c = widths(a, s, size_t(b), in);
      y = stages_[s][size_t(b)]->forward(y, c, block_name(s, size_t(b)), fq);
      in = c.out;
    }
  y = y.mean({2, 3});
  y = classifier_dropout(y, cfg_.dropout, is_training());
  return at::linear(fq.input("classifier", y), fq.weight("classifier", cls_w_.narrow(1, 0, in)), cls_b_);
}

UnitDesc ResNetSupernetImpl::stem_desc() const {
  return {"stem", "conv", input_.channels, cfg_.stem_width, 3, cfg_.stem_stride, true, Act::kRelu, input_.height,
          input_.width};
}

UnitDesc ResNetSupernetImpl::classifier_desc(int64_t in) const {
  return {"classifier", "linear", in, input_.classes, 1, 1, false, Act::kNone, 1, 1};
}

void ResNetSupernetImpl::build(SubnetBuilder& b) const {
  const ResNetArch a = arch_of(b.spec());
  const auto stem = stem_desc();
  int y = b.unit(stem, [&] { return bn_unit_weights(stem_w_, stem_bn_, cfg_.stem_width); }, b.input());
  int64_t h = stem.out_h(), w = stem.out_w(), in = cfg_.stem_width;
  for (size_t s = 0; s < stages_.size(); ++s)
    for (int i = 0; i < a.depth[s]; ++i) {
      const auto c = widths(a, s, size_t(i), in);
      y = stages_[s][size_t(i)]->extract(b, y, block_name(s, size_t(i)), c, h, w);
      in = c.out;
    }
  y = b.mean(y, "head.pool");
  if (cfg_.dropout > 0) y = b.dropout(y, cfg_.dropout);
  b.unit(classifier_desc(in), [&] { return biased_unit_weights(cls_w_.narrow(1, 0, in), cls_b_); }, y);
}

Supernet make_resnet(const core::Config& cfg, const InputShape& input) {
  return std::make_shared<ResNetSupernetImpl>(cfg.supernet.resnet, cfg.quant, input);
}

void tiny_resnet(core::Config& cfg) {
  cfg.supernet.kind = "resnet";
  auto& r = cfg.supernet.resnet;
  r.stem_width = 8;
  r.stem_stride = 1;
  r.stages = {{24, 2}, {32, 2}};
  r.depth = {1, 2};
  r.expand_pct = {25, 50};
  r.width_pct = {50, 100};
  r.width_scope = "stage";
}

}  // namespace qnas::supernet
