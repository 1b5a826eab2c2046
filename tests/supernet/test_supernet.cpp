// The mbv3 supernet: kernel cropping / transforms and channel slicing have
// the right shapes, every choice runs, BN folding is exact. (Extraction
// against the elastic forward is in the conformance suite, tests/families.)
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "supernet/mbv3.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

namespace {

supernet::Supernet randomised_tiny_net(core::Config cfg = qnas::testing::tiny_config()) {
  return qnas::testing::randomised_net(cfg);
}

at::Tensor images(int n = 6) {
  at::manual_seed(42);
  return at::randn({n, 1, 28, 28});
}

}  // namespace

TEST(Supernet, ChannelSlicingShapes) {
  auto net = randomised_tiny_net();
  auto spec = supernet::smallest_spec(net->space());
  spec.arch["s1.b0.expand"] = 3;
  spec.arch["s1.b0.kernel"] = 5;
  const auto subnet = net->extract(spec);
  const auto shape = [&](const std::string& unit) { return subnet->unit(unit)->weight.sizes(); };
  // Two blocks: s0.b0 and s1.b0.
  EXPECT_EQ(subnet->units().size(), 1u + 3u + 5u + 3u);
  // Stage 0 block 0: in 8 (stem), expand 2 -> mid make_divisible(16) = 16, out 16.
  EXPECT_EQ(shape("s0.b0.pw1"), (at::IntArrayRef{16, 8, 1, 1}));
  EXPECT_EQ(shape("s0.b0.dw"), (at::IntArrayRef{16, 1, 3, 3}));
  EXPECT_EQ(shape("s0.b0.pw2"), (at::IntArrayRef{16, 16, 1, 1}));
  // Stage 1 block 0: in 16, expand 3 -> mid 48, kernel 5, SE bottleneck make_divisible(12) = 16.
  EXPECT_EQ(shape("s1.b0.pw1"), (at::IntArrayRef{48, 16, 1, 1}));
  EXPECT_EQ(shape("s1.b0.dw"), (at::IntArrayRef{48, 1, 5, 5}));
  EXPECT_EQ(shape("s1.b0.se_reduce"), (at::IntArrayRef{16, 48}));
  EXPECT_EQ(shape("s1.b0.se_expand"), (at::IntArrayRef{48, 16}));
  EXPECT_EQ(shape("s1.b0.pw2"), (at::IntArrayRef{24, 48, 1, 1}));
  // No residual add: the first block changes the width.
  for (const auto& op : subnet->ops()) EXPECT_NE(op.kind, supernet::SubnetOpKind::kAdd) << op.name;
  // Spatial sizes: 28 -> 14 -> 7.
  EXPECT_EQ(subnet->unit("s0.b0.dw")->desc().out_h(), 14);
  EXPECT_EQ(subnet->unit("s1.b0.dw")->desc().out_h(), 7);
}

TEST(Supernet, KernelCropAndTransform) {
  auto cfg = qnas::testing::tiny_config();
  cfg.supernet.mbv3.kernel = {3, 5, 7};
  for (bool transform : {false, true}) {
    cfg.supernet.mbv3.kernel_transform = transform;
    torch::manual_seed(0);
    auto net = supernet::make_supernet(cfg, {1, 28, 28, 10});
    auto mb = std::dynamic_pointer_cast<supernet::MBV3SupernetImpl>(net);
    auto block = std::dynamic_pointer_cast<supernet::ElasticBlockImpl>(mb->named_modules()["s0_b0"]);
    ASSERT_TRUE(block);
    at::NoGradGuard no_grad;
    const auto full = block->dw_kernel(24, 7);
    EXPECT_EQ(full.sizes(), (at::IntArrayRef{24, 1, 7, 7}));
    // At initialisation the transforms are the identity: every kernel is the centre crop.
    EXPECT_TRUE(block->dw_kernel(24, 5).equal(full.narrow(2, 1, 5).narrow(3, 1, 5)));
    EXPECT_TRUE(block->dw_kernel(16, 3).equal(full.narrow(0, 0, 16).narrow(2, 2, 3).narrow(3, 2, 3)));
    EXPECT_EQ(block->named_parameters().contains("transform_5to3"), transform);
    if (!transform) continue;
    // A trained transform mixes the cropped taps: 5x5 = crop(7) @ T(7->5)^T.
    auto t75 = block->named_parameters()["transform_7to5"];  // a handle: named_parameters() is a temporary
    t75.copy_(at::randn({25, 25}));
    const auto crop = full.narrow(2, 1, 5).narrow(3, 1, 5).reshape({24, 25});
    EXPECT_TRUE(at::allclose(block->dw_kernel(24, 5).reshape({24, 25}), crop.matmul(t75.t()), 1e-5, 1e-5));
  }
}

TEST(Supernet, EveryChoiceOfEveryVariableRuns) {
  auto net = randomised_tiny_net();
  const auto& space = net->space();
  const auto x = images(2);
  at::NoGradGuard no_grad;
  for (const auto& v : space.variables) {
    if (v.is_policy()) continue;
    for (int choice : v.choices) {
      std::map<std::string, int> values;
      for (const auto& u : space.variables) values[u.name] = u.choices.back();
      values[v.name] = choice;
      const auto spec = supernet::spec_from_values(space, values);
      const auto y = net->extract(spec)->forward(x);
      EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 10})) << v.name << "=" << choice;
      EXPECT_TRUE(at::allclose(y, net->forward(x, spec), 1e-5, 1e-5)) << v.name << "=" << choice;
    }
  }
}

// Colour 32x32 images with a stride-2 stem: the stem halves the resolution
// every later layer runs at, and extraction still computes the supernet.
TEST(Supernet, StemStrideAndColourInputs) {
  auto cfg = qnas::testing::tiny_config();
  cfg.supernet.mbv3.stem_stride = 2;
  auto net = qnas::testing::randomised_net(cfg, {3, 32, 32, 7});
  at::manual_seed(1);
  const auto x = at::randn({2, 3, 32, 32});
  const auto spec = supernet::largest_spec(net->space());
  at::NoGradGuard no_grad;
  const auto subnet = net->extract(spec);
  EXPECT_EQ(subnet->unit("stem")->weight.sizes(), (at::IntArrayRef{8, 3, 3, 3}));
  const auto y = subnet->forward(x);
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 7}));
  EXPECT_TRUE(at::allclose(y, net->forward(x, spec), 1e-5, 1e-5));
  const auto layers = subnet->layer_infos();
  EXPECT_EQ(layers[0].out_h, 16);                                   // the stem: 32 / 2
  EXPECT_EQ(net->layer_infos(spec)[1].out_h, layers[1].out_h);      // shapes alone agree
  auto stride1 = qnas::testing::tiny_config();
  EXPECT_EQ(qnas::testing::randomised_net(stride1, {3, 32, 32, 7})->extract(spec)->layer_infos()[0].out_h, 32);
  EXPECT_NE(net->space().structure_hash(), qnas::testing::randomised_net(stride1, {3, 32, 32, 7})->space().structure_hash());
}

TEST(Supernet, BnFoldingIsExactInFp32) {
  auto net = randomised_tiny_net();
  core::Rng rng(9);
  const auto x = images();
  at::NoGradGuard no_grad;
  for (int i = 0; i < 4; ++i) {
    auto subnet = net->extract(supernet::random_spec(net->space(), rng, false));
    const auto before = subnet->forward(x);
    subnet->fold_bn();
    EXPECT_TRUE(subnet->bn_folded());
    EXPECT_TRUE(at::allclose(subnet->forward(x), before, 1e-4, 1e-5))
        << (subnet->forward(x) - before).abs().max().item<double>();
  }
}


TEST(Supernet, LayerInfosFromShapesEqualTheExtractedSubnets) {
  auto net = randomised_tiny_net();
  core::Rng rng(6);
  for (int i = 0; i < 20; ++i) {
    const auto spec = supernet::random_spec(net->space(), rng);
    const auto cheap = net->layer_infos(spec);
    const auto real = net->extract(spec)->layer_infos();
    ASSERT_EQ(cheap.size(), real.size());
    for (size_t k = 0; k < real.size(); ++k) {
      EXPECT_EQ(cheap[k].name, real[k].name);
      EXPECT_EQ(cheap[k].weight_numel, real[k].weight_numel) << real[k].name;
      EXPECT_EQ(cheap[k].macs(), real[k].macs()) << real[k].name;
      EXPECT_EQ(cheap[k].bias_numel, real[k].bias_numel);
      EXPECT_EQ(cheap[k].policy, real[k].policy);
    }
  }
}

// train.quant_aware: the elastic forward simulates the spec's policies only
// when switched on; an fp32 policy is the plain forward; gradients reach the
// weights through the fake quantizers; the stem is shared exactly when the
// stem's policy is.
TEST(Supernet, QuantAwareForward) {
  auto net = randomised_tiny_net();
  net->train();
  const auto& space = net->space();
  const auto x = images(8);
  const auto fp32 = supernet::largest_spec(space);
  const auto w4a8 = supernet::largest_spec(space, quant::LayerPolicy{4, 8, "rtn", {}});
  const auto plain = net->forward(x, fp32);
  EXPECT_TRUE(at::equal(net->forward(x, w4a8), plain));  // off: policies ignored
  net->set_quant_aware(true);
  // (SE runs as two linear layers then, as deployed: equal up to rounding.)
  EXPECT_TRUE(at::allclose(net->forward(x, fp32), plain, 1e-5, 1e-5));
  const auto fq = net->forward(x, w4a8);
  EXPECT_GT((fq - plain).abs().max().item<double>(), 1e-3);
  fq.square().sum().backward();
  int with_grad = 0;
  for (const auto& p : net->named_parameters())
    if (p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0) ++with_grad;
  EXPECT_GT(with_grad, int(net->parameters().size()) / 2);
  const auto params = net->named_parameters();  // find() points into it: keep it alive (found by ASan)
  for (const auto& name : {"stem_weight", "s0_b0.pw1_weight", "classifier_weight"}) {
    const auto* p = params.find(name);
    ASSERT_TRUE(p) << name;
    EXPECT_GT(p->grad().abs().sum().item<double>(), 0) << name;
  }
  auto other = w4a8;
  other.policy.at("classifier").weight_bits = 8;
  EXPECT_TRUE(net->same_stem(w4a8, other));
  other.policy.at("stem").act_bits = 32;
  EXPECT_FALSE(net->same_stem(w4a8, other));
  net->set_quant_aware(false);
  EXPECT_TRUE(net->same_stem(w4a8, other));
}
