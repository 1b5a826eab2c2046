#include "supernet/vit.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "src/core/error.hpp"

namespace qnas::supernet {

namespace {

// A linear layer of subnet `name` with its policy simulated by `fq`.
at::Tensor linear(const FakeQuant& fq, const std::string& name, const at::Tensor& x, const at::Tensor& w,
                  const at::Tensor& b) {
  return at::linear(fq.input(name, x), fq.weight(name, w), b);
}

// timm's ViT initialisation: weights normal(0, 0.02), biases 0.
void init_normal(at::Tensor& w) { w.normal_(0, 0.02); }

UnitDesc token_linear(const std::string& name, int64_t in, int64_t out, Act act, int64_t tokens) {
  return {name, "linear", in, out, 1, 1, false, act, tokens, 1};
}

}  // namespace

// --- ViTBlock ----------------------------------------------------------------

ViTBlockImpl::ViTBlockImpl(int64_t embed_max, int64_t heads_max, int64_t head_dim_, int64_t hidden_max)
    : head_dim(head_dim_) {
  const int64_t width = heads_max * head_dim;
  ln1_w_ = register_parameter("ln1_weight", at::ones({embed_max}));
  ln1_b_ = register_parameter("ln1_bias", at::zeros({embed_max}));
  qkv_w_ = register_parameter("qkv_weight", at::empty({3 * width, embed_max}));
  qkv_b_ = register_parameter("qkv_bias", at::zeros({3 * width}));
  proj_w_ = register_parameter("proj_weight", at::empty({embed_max, width}));
  proj_b_ = register_parameter("proj_bias", at::zeros({embed_max}));
  ln2_w_ = register_parameter("ln2_weight", at::ones({embed_max}));
  ln2_b_ = register_parameter("ln2_bias", at::zeros({embed_max}));
  fc1_w_ = register_parameter("fc1_weight", at::empty({hidden_max, embed_max}));
  fc1_b_ = register_parameter("fc1_bias", at::zeros({hidden_max}));
  fc2_w_ = register_parameter("fc2_weight", at::empty({embed_max, hidden_max}));
  fc2_b_ = register_parameter("fc2_bias", at::zeros({embed_max}));
  at::NoGradGuard no_grad;
  for (at::Tensor* w : {&qkv_w_, &proj_w_, &fc1_w_, &fc2_w_}) init_normal(*w);
}

at::Tensor ViTBlockImpl::qkv_weight(int64_t heads, int64_t embed) const {
  const int64_t heads_max = qkv_w_.size(0) / (3 * head_dim);
  return qkv_w_.view({3, heads_max, head_dim, qkv_w_.size(1)})
      .narrow(1, 0, heads)
      .narrow(3, 0, embed)
      .reshape({3 * heads * head_dim, embed});
}

at::Tensor ViTBlockImpl::qkv_bias(int64_t heads) const {
  const int64_t heads_max = qkv_b_.size(0) / (3 * head_dim);
  return qkv_b_.view({3, heads_max, head_dim}).narrow(1, 0, heads).reshape({3 * heads * head_dim});
}

at::Tensor ViTBlockImpl::attend(const at::Tensor& x, int64_t heads, const std::string& name,
                                const FakeQuant& fq) const {
  const int64_t e = x.size(-1);
  const auto a = attention(linear(fq, name + ".qkv", x, qkv_weight(heads, e), qkv_bias(heads)), heads, head_dim);
  return linear(fq, name + ".proj", a, lead(proj_w_, e, heads * head_dim), lead(proj_b_, e));
}

at::Tensor ViTBlockImpl::forward(const at::Tensor& x, int64_t heads, int64_t hidden, const std::string& name,
                                 const FakeQuant& fq) const {
  const int64_t e = x.size(-1);
  const auto y = x + attend(layer_norm(x, lead(ln1_w_, e), lead(ln1_b_, e)), heads, name, fq);
  auto m = linear(fq, name + ".fc1", layer_norm(y, lead(ln2_w_, e), lead(ln2_b_, e)), lead(fc1_w_, hidden, e),
                  lead(fc1_b_, hidden));
  m = linear(fq, name + ".fc2", apply_act(m, Act::kGelu), lead(fc2_w_, e, hidden), lead(fc2_b_, e));
  return y + m;
}

int ViTBlockImpl::extract(SubnetBuilder& b, int x, const std::string& name, int64_t embed, int64_t heads,
                          int64_t hidden, int64_t tokens) const {
  const int64_t width = heads * head_dim;
  int a = b.layer_norm(x, lead(ln1_w_, embed), lead(ln1_b_, embed), name + ".ln1");
  a = b.unit(token_linear(name + ".qkv", embed, 3 * width, Act::kNone, tokens),
             [&] { return biased_unit_weights(qkv_weight(heads, embed), qkv_bias(heads)); }, a);
  a = b.attention(a, heads, head_dim, tokens, name + ".attn");
  a = b.unit(token_linear(name + ".proj", width, embed, Act::kNone, tokens),
             [&] { return biased_unit_weights(lead(proj_w_, embed, width), lead(proj_b_, embed)); }, a);
  const int y = b.add(x, a, name + ".add1");
  int m = b.layer_norm(y, lead(ln2_w_, embed), lead(ln2_b_, embed), name + ".ln2");
  m = b.unit(token_linear(name + ".fc1", embed, hidden, Act::kGelu, tokens),
             [&] { return biased_unit_weights(lead(fc1_w_, hidden, embed), lead(fc1_b_, hidden)); }, m);
  m = b.unit(token_linear(name + ".fc2", hidden, embed, Act::kNone, tokens),
             [&] { return biased_unit_weights(lead(fc2_w_, embed, hidden), lead(fc2_b_, embed)); }, m);
  return b.add(y, m, name + ".add2");
}

// --- ViTSupernet ---------------------------------------------------------------

void check_vit_config(const core::ViTConfig& cfg, const InputShape& input) {
  for (const auto& [key, choices] : {std::pair<const char*, const std::vector<int>*>{"embed_dim", &cfg.embed_dim},
                                     {"depth", &cfg.depth},
                                     {"heads", &cfg.heads},
                                     {"mlp_ratio", &cfg.mlp_ratio}}) {
    QNAS_CHECK(!choices->empty(), "supernet.", key, ": no choices; expected a list of positive integers");
    for (int c : *choices) QNAS_CHECK(c > 0, "supernet.", key, ": ", c, "; expected positive integers");
  }
  QNAS_CHECK(cfg.patch > 0 && input.height % cfg.patch == 0 && input.width % cfg.patch == 0, "supernet.patch: ",
             cfg.patch, " does not divide the ", input.height, "x", input.width,
             " images; expected a divisor of both sides (patches do not overlap or pad)");
  const int embed = max_of(cfg.embed_dim), heads = max_of(cfg.heads);
  QNAS_CHECK(embed % heads == 0, "supernet.heads: the largest choice (", heads,
             ") does not divide the largest supernet.embed_dim (", embed,
             "); expected a divisor (every head has embed_dim / heads channels of the largest subnet)");
  for (int r : cfg.mlp_ratio)
    QNAS_CHECK(r <= 8, "supernet.mlp_ratio: ", r, "; expected whole ratios from 1 to 8 (hidden = ratio x embed_dim)");
  QNAS_CHECK(cfg.pool == "cls" || cfg.pool == "mean", "supernet.pool: '", cfg.pool, "'; expected cls or mean");
  QNAS_CHECK(cfg.dropout >= 0 && cfg.dropout < 1, "supernet.dropout: ", cfg.dropout, "; expected 0 <= p < 1");
}

ViTSupernetImpl::ViTSupernetImpl(const core::ViTConfig& cfg, const core::QuantConfig& quant, const InputShape& input)
    : cfg_(cfg), input_(input) {
  check_vit_config(cfg, input);
  const int64_t embed = max_of(cfg.embed_dim), heads = max_of(cfg.heads);
  head_dim_ = embed / heads;
  patch_w_ = register_parameter("patch_weight", at::empty({embed, input.channels, cfg.patch, cfg.patch}));
  patch_b_ = register_parameter("patch_bias", at::zeros({embed}));
  if (cfg.pool == "cls") cls_token_ = register_parameter("cls_token", at::empty({embed}));
  pos_ = register_parameter("pos_embed", at::empty({tokens(), embed}));
  for (int i = 0; i < max_of(cfg.depth); ++i)
    blocks_.push_back(register_module("b" + std::to_string(i),
                                      ViTBlock(embed, heads, head_dim_, embed * max_of(cfg.mlp_ratio))));
  ln_w_ = register_parameter("ln_weight", at::ones({embed}));
  ln_b_ = register_parameter("ln_bias", at::zeros({embed}));
  cls_w_ = register_parameter("classifier_weight", at::empty({input.classes, embed}));
  cls_b_ = register_parameter("classifier_bias", at::zeros({input.classes}));
  at::NoGradGuard no_grad;
  const double fan_in = double(input.channels * cfg.patch * cfg.patch);
  patch_w_.uniform_(-1 / std::sqrt(fan_in), 1 / std::sqrt(fan_in));  // as a default-initialised conv
  for (at::Tensor* w : {&pos_, &cls_w_}) init_normal(*w);
  if (cls_token_.defined()) init_normal(cls_token_);
  build_space(quant);
}

int64_t ViTSupernetImpl::patches() const { return (input_.height / cfg_.patch) * (input_.width / cfg_.patch); }
int64_t ViTSupernetImpl::tokens() const { return patches() + (cfg_.pool == "cls" ? 1 : 0); }

void ViTSupernetImpl::build_space(const core::QuantConfig& quant) {
  space_.supernet = "vit";
  const auto depths = sorted(cfg_.depth), heads = sorted(cfg_.heads), ratios = sorted(cfg_.mlp_ratio);
  const std::string depth_var = "s0.depth";
  space_.variables.push_back({"embed_dim", sorted(cfg_.embed_dim), "", "embed_dim", "", 0, {}});
  space_.variables.push_back({depth_var, depths, "", "depth", "", 0, {}});
  auto& layers = space_.layer_descs;
  layers.push_back({"stem", "stem", "stem", "", 0});
  for (size_t j = 0; j < blocks_.size(); ++j) {
    const auto [cond, min] = block_activity(depth_var, depths, j);
    const std::string name = block_name(0, j);
    space_.variables.push_back({name + ".heads", heads, "", "heads", cond, min, {}});
    space_.variables.push_back({name + ".mlp_ratio", ratios, "", "mlp_ratio", cond, min, {}});
    for (const char* unit : {".qkv", ".proj", ".fc1", ".fc2"}) layers.push_back({name + unit, name, "s0", cond, min});
  }
  layers.push_back({"classifier", "classifier", "classifier", "", 0});
  add_policy_variables(space_, quant);
  space_.structure = {{"kind", "vit"},
                      {"input", {input_.channels, input_.height, input_.width}},
                      {"classes", input_.classes},
                      {"patch", cfg_.patch},
                      {"embed_dim", sorted(cfg_.embed_dim)},
                      {"depth", depths},
                      {"heads", heads},
                      {"mlp_ratio", ratios},
                      {"pool", cfg_.pool}};
}

ViTArch ViTSupernetImpl::arch_of(const SubnetSpec& spec) const {
  validate_spec(space_, spec, "subnet spec");
  return {spec.arch.at("embed_dim"), block_choices(spec, 0, "heads"), block_choices(spec, 0, "mlp_ratio")};
}

at::Tensor ViTSupernetImpl::class_token(int64_t embed) const {
  return cls_token_.defined() ? lead(cls_token_, embed) : at::Tensor();
}

at::Tensor ViTSupernetImpl::stem(const at::Tensor& x, const SubnetSpec& spec) {
  const int64_t e = arch_of(spec).embed;
  const auto fq = fake_quant(spec);
  const auto patches = conv(fq.input("stem", x), fq.weight("stem", lead(patch_w_, e)), lead(patch_b_, e), cfg_.patch,
                            /*padding=*/0, 1);
  return embed_tokens(to_tokens(patches), pos_.narrow(1, 0, e), class_token(e));
}

bool ViTSupernetImpl::same_stem(const SubnetSpec& a, const SubnetSpec& b) const {
  return a.arch.at("embed_dim") == b.arch.at("embed_dim") && SupernetImpl::same_stem(a, b);
}

at::Tensor ViTSupernetImpl::forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) {
  const ViTArch a = arch_of(spec);
  const auto fq = fake_quant(spec);
  at::Tensor y = stem;
  for (size_t i = 0; i < a.heads.size(); ++i)
    y = blocks_[i]->forward(y, a.heads[i], a.mlp_ratio[i] * a.embed, block_name(0, i), fq);
  y = layer_norm(y, lead(ln_w_, a.embed), lead(ln_b_, a.embed));
  y = cfg_.pool == "cls" ? y.select(1, 0) : y.mean(1);
  y = classifier_dropout(y, cfg_.dropout, is_training());
  return linear(fq, "classifier", y, cls_w_.narrow(1, 0, a.embed), cls_b_);
}

bool ViTSupernetImpl::decays(const std::string& name) const {
  const std::string key = name.substr(name.rfind('.') + 1);  // the whole name when it has no '.'
  return key.rfind("ln", 0) != 0 && key.find("bias") == std::string::npos && key != "pos_embed" &&
         key != "cls_token";
}

UnitDesc ViTSupernetImpl::stem_desc(int64_t embed) const {
  return {"stem",        "conv", input_.channels, embed, cfg_.patch, cfg_.patch, false, Act::kNone, input_.height,
          input_.width, /*pad=*/0};
}

void ViTSupernetImpl::build(SubnetBuilder& b) const {
  const ViTArch a = arch_of(b.spec());
  const int64_t e = a.embed;
  int y = b.unit(stem_desc(e), [&] { return biased_unit_weights(lead(patch_w_, e), lead(patch_b_, e)); }, b.input());
  y = b.tokens(y, "tokens");
  y = b.embed(y, pos_.narrow(1, 0, e), class_token(e), "embed");
  for (size_t i = 0; i < a.heads.size(); ++i)
    y = blocks_[i]->extract(b, y, block_name(0, i), e, a.heads[i], a.mlp_ratio[i] * e, tokens());
  y = b.layer_norm(y, lead(ln_w_, e), lead(ln_b_, e), "head.ln");
  y = cfg_.pool == "cls" ? b.class_token(y, "head.cls") : b.token_mean(y, "head.pool");
  if (cfg_.dropout > 0) y = b.dropout(y, cfg_.dropout);
  b.unit(token_linear("classifier", e, input_.classes, Act::kNone, 1),
         [&] { return biased_unit_weights(cls_w_.narrow(1, 0, e), cls_b_); }, y);
}

Supernet make_vit(const core::Config& cfg, const InputShape& input) {
  return std::make_shared<ViTSupernetImpl>(cfg.supernet.vit, cfg.quant, input);
}

// Transformers train with AdamW: the tiny instance sets it, with the
// learning rate and weight decay it trains in seconds with.
void tiny_vit(core::Config& cfg) {
  cfg.supernet.kind = "vit";
  auto& v = cfg.supernet.vit;
  v.patch = 7;
  v.embed_dim = {32, 48};
  v.depth = {1, 2};
  v.heads = {2, 3};
  v.mlp_ratio = {1, 2};
  v.pool = "cls";
  cfg.train.optimizer = "adamw";
  cfg.train.lr = 4e-3;
  cfg.train.weight_decay = 0.05;
}

}  // namespace qnas::supernet
