// The vit supernet's own rules: elastic heads are the first heads of a
// standard multi-head attention, the extracted subnet computes the elastic
// forward, linears run once per token, bad configs are refused by key.
// (It joins the family list, and the conformance suite, with its config
// keys; its deployment is tests/deploy/test_vit_deploy.cpp.)
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/utils.h>

#include <algorithm>

#include "supernet/vit.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using core::ViTConfig;

namespace {

// 28x28 images in 7x7 patches: 16 patches; head_dim = 48 / 3 = 16.
ViTConfig tiny_vit_config() {
  ViTConfig c;
  c.patch = 7;
  c.embed_dim = {32, 48};
  c.depth = {1, 2};
  c.heads = {2, 3};
  c.mlp_ratio = {1, 2};
  return c;
}

// Seeded, every parameter moved off its initial value (LayerNorm's ones and
// zeros, zero biases would hide a wrong slice), in eval mode.
std::shared_ptr<supernet::ViTSupernetImpl> tiny_vit(const ViTConfig& c = tiny_vit_config()) {
  torch::manual_seed(0);
  auto net = std::make_shared<supernet::ViTSupernetImpl>(c, core::QuantConfig{}, supernet::InputShape{1, 28, 28, 10});
  at::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.add_(at::randn_like(p) * 0.1);
  net->eval();
  return net;
}

std::vector<supernet::SubnetSpec> some_specs(const supernet::SpaceDesc& space) {
  core::Rng rng(7);
  std::vector<supernet::SubnetSpec> specs{supernet::largest_spec(space), supernet::smallest_spec(space)};
  for (int i = 0; i < 6; ++i) specs.push_back(supernet::random_spec(space, rng, /*with_policy=*/false));
  return specs;
}

const supernet::LayerInfo& info(const std::vector<supernet::LayerInfo>& infos, const std::string& name) {
  const auto it = std::find_if(infos.begin(), infos.end(), [&](const supernet::LayerInfo& l) { return l.name == name; });
  if (it == infos.end()) throw std::runtime_error("no layer " + name);
  return *it;
}

}  // namespace

TEST(ViT, ElasticHeadsAreTheFirstHeadsOfAMultiheadAttention) {
  auto net = tiny_vit();
  const auto& block = net->block(1);
  auto params = block->named_parameters();
  const at::Tensor qkv_w = params["qkv_weight"], qkv_b = params["qkv_bias"];
  const int64_t d = net->head_dim(), width_max = qkv_w.size(0) / 3;
  for (const auto& [embed, heads] : std::vector<std::pair<int64_t, int64_t>>{{32, 2}, {48, 3}}) {
    // Reference: LibTorch's MultiheadAttention with q, k and v each cut to
    // their first heads (rows) and the embedding's first channels (columns).
    torch::nn::MultiheadAttention mha(torch::nn::MultiheadAttentionOptions(embed, heads));
    {
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> w, b;
      for (int64_t part = 0; part < 3; ++part) {
        w.push_back(qkv_w.narrow(0, part * width_max, heads * d).narrow(1, 0, embed));
        b.push_back(qkv_b.narrow(0, part * width_max, heads * d));
      }
      mha->in_proj_weight.copy_(at::cat(w));
      mha->in_proj_bias.copy_(at::cat(b));
      mha->out_proj->weight.copy_(params["proj_weight"].narrow(0, 0, embed).narrow(1, 0, heads * d));
      mha->out_proj->bias.copy_(params["proj_bias"].narrow(0, 0, embed));
    }
    mha->eval();
    at::NoGradGuard no_grad;
    const auto x = at::randn({3, net->tokens(), embed});
    const auto t = x.transpose(0, 1);  // (T, N, E): LibTorch 1.13's layout
    const auto reference = std::get<0>(mha->forward(t, t, t)).transpose(0, 1);
    const auto ours = block->attend(x, heads, "s0.b1");
    EXPECT_TRUE(at::allclose(ours, reference, 1e-4, 1e-5))
        << "embed " << embed << ", heads " << heads << ": max diff " << (ours - reference).abs().max().item<float>();
  }
}

TEST(ViT, ExtractedSubnetComputesTheSupernetsForward) {
  for (const char* pool : {"cls", "mean"}) {
    auto cfg = tiny_vit_config();
    cfg.pool = pool;
    auto net = tiny_vit(cfg);
    at::NoGradGuard no_grad;
    const auto x = at::randn({4, 1, 28, 28});
    for (const auto& spec : some_specs(net->space())) {
      const auto subnet = net->extract(spec);
      const auto expected = net->forward(x, spec), got = subnet->forward(x);
      EXPECT_TRUE(at::allclose(got, expected, 1e-4, 1e-5))
          << pool << ", embed " << spec.arch.at("embed_dim") << ": max diff "
          << (got - expected).abs().max().item<float>();
      // Its parameters are its own copies: changing the supernet leaves it.
      EXPECT_GT(subnet->parameters().size(), subnet->units().size() * 2);
    }
  }
}

TEST(ViT, ShapeProxiesEqualTheExtractedSubnetsLayers) {
  auto net = tiny_vit();
  for (const auto& spec : some_specs(net->space())) {
    const auto proxies = net->layer_infos(spec), extracted = net->extract(spec)->layer_infos();
    ASSERT_EQ(proxies.size(), extracted.size());
    for (size_t i = 0; i < proxies.size(); ++i) {
      EXPECT_EQ(proxies[i].name, extracted[i].name);
      EXPECT_EQ(proxies[i].weight_numel, extracted[i].weight_numel) << proxies[i].name;
      EXPECT_EQ(proxies[i].macs(), extracted[i].macs()) << proxies[i].name;
    }
  }
}

TEST(ViT, LinearsRunOnEveryTokenAndSliceTheirHeads) {
  auto net = tiny_vit();
  const int64_t tokens = 16 + 1;  // 4x4 patches and the class token
  ASSERT_EQ(net->tokens(), tokens);
  const auto largest = net->extract(supernet::largest_spec(net->space()));
  const auto shape = [&](const supernet::Subnet& s, const std::string& unit) { return s->unit(unit)->weight.sizes().vec(); };
  using S = std::vector<int64_t>;
  EXPECT_EQ(shape(largest, "stem"), (S{48, 1, 7, 7}));
  EXPECT_EQ(shape(largest, "s0.b1.qkv"), (S{3 * 3 * 16, 48}));
  EXPECT_EQ(shape(largest, "s0.b1.proj"), (S{48, 3 * 16}));
  EXPECT_EQ(shape(largest, "s0.b1.fc1"), (S{96, 48}));
  EXPECT_EQ(shape(largest, "s0.b1.fc2"), (S{48, 96}));
  EXPECT_EQ(shape(largest, "classifier"), (S{10, 48}));
  const auto infos = largest->layer_infos();
  EXPECT_EQ(info(infos, "stem").macs(), 48 * 7 * 7 * 16);
  EXPECT_EQ(info(infos, "s0.b0.qkv").macs(), tokens * 48 * 144);
  EXPECT_EQ(info(infos, "s0.b0.fc2").macs(), tokens * 96 * 48);
  EXPECT_EQ(info(infos, "classifier").macs(), 48 * 10);

  // The smallest: one block, embedding 32, two heads of 16, MLP ratio 1.
  const auto smallest = net->extract(supernet::smallest_spec(net->space()));
  EXPECT_EQ(shape(smallest, "s0.b0.qkv"), (S{3 * 2 * 16, 32}));
  EXPECT_EQ(shape(smallest, "s0.b0.proj"), (S{32, 2 * 16}));
  EXPECT_EQ(shape(smallest, "s0.b0.fc1"), (S{32, 32}));
  const auto layers = smallest->layer_infos();
  const auto compressible = std::count_if(layers.begin(), layers.end(), [](const auto& l) { return l.compressible; });
  EXPECT_EQ(compressible, 1 + 4 + 1);
  EXPECT_EQ(layers.size(), 1u + 4u + 1u + 5u);  // and embed, the block's two LayerNorms and attention, the head's LayerNorm
  EXPECT_EQ(net->space().layers.size(), 1u + 2u * 4u + 1u);
}

TEST(ViT, QuantAwareForwardSimulatesPoliciesAndPassesGradients) {
  auto net = tiny_vit();
  net->train();
  const auto x = at::randn({4, 1, 28, 28});
  const auto fp32 = supernet::largest_spec(net->space());
  const auto w4a8 = supernet::largest_spec(net->space(), quant::LayerPolicy{4, 8, "rtn", {}});
  net->set_quant_aware(true);
  EXPECT_TRUE(net->forward(x, fp32).equal(net->forward(x, supernet::largest_spec(net->space()))));
  EXPECT_FALSE(net->same_stem(fp32, w4a8));
  const auto y = net->forward(x, w4a8);
  EXPECT_GT((y - net->forward(x, fp32)).abs().max().item<float>(), 1e-4);
  y.square().sum().backward();
  for (const char* p : {"patch_weight", "b1.qkv_weight", "b1.fc2_weight", "classifier_weight", "pos_embed"}) {
    const auto g = net->named_parameters()[p].grad();
    ASSERT_TRUE(g.defined()) << p;
    EXPECT_GT(g.abs().sum().item<float>(), 0) << p;
  }
  auto other_embed = fp32;
  other_embed.arch["embed_dim"] = 32;
  EXPECT_FALSE(net->same_stem(fp32, other_embed));
}

TEST(ViT, WeightDecaySparesNormsBiasesAndEmbeddings) {
  auto net = tiny_vit();
  std::vector<std::string> decayed, spared;
  for (const auto& p : net->named_parameters()) (net->decays(p.key()) ? decayed : spared).push_back(p.key());
  std::sort(decayed.begin(), decayed.end());
  EXPECT_EQ(decayed, (std::vector<std::string>{"b0.fc1_weight", "b0.fc2_weight", "b0.proj_weight", "b0.qkv_weight",
                                               "b1.fc1_weight", "b1.fc2_weight", "b1.proj_weight", "b1.qkv_weight",
                                               "classifier_weight", "patch_weight"}));
  for (const char* p : {"cls_token", "pos_embed", "patch_bias", "b0.ln1_weight", "b1.ln2_bias", "ln_weight"})
    EXPECT_NE(std::find(spared.begin(), spared.end(), p), spared.end()) << p;
}

TEST(ViT, BadConfigsAreRefusedNamingTheKey) {
  using qnas::testing::expect_error;
  const supernet::InputShape input{1, 28, 28, 10};
  auto heads = tiny_vit_config();
  heads.heads = {2, 5};
  expect_error([&] { supernet::check_vit_config(heads, input); }, {"supernet.heads", "5", "48", "divisor"});
  auto patch = tiny_vit_config();
  patch.patch = 5;
  expect_error([&] { supernet::check_vit_config(patch, input); }, {"supernet.patch", "5", "28x28"});
  auto ratio = tiny_vit_config();
  ratio.mlp_ratio = {2, 9};
  expect_error([&] { supernet::check_vit_config(ratio, input); }, {"supernet.mlp_ratio", "9", "1 to 8"});
  auto pool = tiny_vit_config();
  pool.pool = "max";
  expect_error([&] { supernet::check_vit_config(pool, input); }, {"supernet.pool", "'max'", "cls or mean"});
  auto empty = tiny_vit_config();
  empty.depth = {};
  expect_error([&] { supernet::check_vit_config(empty, input); }, {"supernet.depth", "no choices"});
}

TEST(ViT, TheExtractedSubnetHoldsTheTransformerOps) {
  auto net = tiny_vit();
  const auto subnet = net->extract(supernet::smallest_spec(net->space()));
  const auto kinds = [&] {
    std::vector<supernet::SubnetOpKind> k;
    for (const auto& op : subnet->ops()) k.push_back(op.kind);
    return k;
  }();
  for (auto kind : {supernet::SubnetOpKind::kTokens, supernet::SubnetOpKind::kEmbed,
                    supernet::SubnetOpKind::kLayerNorm, supernet::SubnetOpKind::kAttention,
                    supernet::SubnetOpKind::kClassToken})
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), kind), kinds.end());
}

TEST(ViT, CostsCountAttentionsMatmulsAndEveryParameter) {
  auto net = tiny_vit();
  const auto subnet = net->extract(supernet::largest_spec(net->space()));
  const auto infos = subnet->layer_infos();
  // One block by hand: embed 48, 3 heads of 16, MLP ratio 2, 17 tokens.
  const int64_t t = 17, e = 48, width = 48, hidden = 96;
  const int64_t qkv = t * e * 3 * width, attention = 2 * t * t * width, proj = t * width * e;
  const int64_t fc1 = t * e * hidden, fc2 = t * hidden * e;
  int64_t block = 0;
  for (const auto& l : infos)
    if (l.name.rfind("s0.b0.", 0) == 0) block += l.macs();
  EXPECT_EQ(block, qkv + attention + proj + fc1 + fc2);
  EXPECT_EQ(info(infos, "s0.b0.attn").macs(), attention);
  EXPECT_EQ(info(infos, "s0.b0.ln1").macs(), 0);
  // Every parameter is some layer's: weights, biases, LayerNorms, the
  // positional embedding and the class token.
  int64_t counted = 0, params = 0;
  for (const auto& l : infos) counted += l.weight_numel + l.bias_numel;
  for (const auto& p : subnet->parameters()) params += p.numel();
  EXPECT_EQ(counted, params);
  EXPECT_EQ(info(infos, "embed").weight_numel, t * e);
  EXPECT_EQ(info(infos, "embed").bias_numel, e);
  EXPECT_FALSE(info(infos, "head.ln").compressible);
}
