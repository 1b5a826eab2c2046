// The resnet family's own rules: widths from the percentages, depth cuts
// whole blocks (and their policies), every stage's first block has a
// downsample path with a policy, one width gene per stage or for the net.
// (What every family must do is the conformance suite, tests/families.)
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>

#include "supernet/resnet.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

namespace {

supernet::Supernet tiny_resnet(core::Config cfg = qnas::testing::tiny_config("", "resnet")) {
  torch::manual_seed(0);
  return supernet::make_supernet(cfg, {1, 28, 28, 10});
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

TEST(ResNet, WidthsFollowThePercentages) {
  auto net = tiny_resnet();  // stem 8; stages 24, 32 (stride 2 each); width {50, 100}%; expand {25, 50}%
  auto spec = supernet::smallest_spec(net->space());
  spec.arch["s0.width_pct"] = 100;
  spec.arch["s0.b0.expand_pct"] = 50;
  spec.arch["s1.width_pct"] = 50;
  spec.arch["s1.b0.expand_pct"] = 25;
  const auto subnet = net->extract(spec);
  const auto shape = [&](const std::string& unit) { return subnet->unit(unit)->weight.sizes().vec(); };
  using S = std::vector<int64_t>;
  // s0: 24 channels (100%), bottleneck make_divisible(12) = 16, from the stem's 8.
  EXPECT_EQ(shape("s0.b0.conv1"), (S{16, 8, 1, 1}));
  EXPECT_EQ(shape("s0.b0.conv2"), (S{16, 16, 3, 3}));
  EXPECT_EQ(shape("s0.b0.conv3"), (S{24, 16, 1, 1}));
  EXPECT_EQ(shape("s0.b0.down"), (S{24, 8, 1, 1}));
  // s1: make_divisible(16) = 16 channels (50% of 32), bottleneck make_divisible(4) = 8.
  EXPECT_EQ(shape("s1.b0.conv1"), (S{8, 24, 1, 1}));
  EXPECT_EQ(shape("s1.b0.conv3"), (S{16, 8, 1, 1}));
  EXPECT_EQ(shape("s1.b0.down"), (S{16, 24, 1, 1}));
  EXPECT_EQ(shape("classifier"), (S{10, 16}));
  // The stride is on the 3x3 conv and the downsample path: 28 -> 14 -> 7.
  const auto infos = subnet->layer_infos();
  const auto info = [&](const std::string& name) {
    return *std::find_if(infos.begin(), infos.end(), [&](const supernet::LayerInfo& l) { return l.name == name; });
  };
  EXPECT_EQ(info("s0.b0.conv1").out_h, 28);
  EXPECT_EQ(info("s0.b0.conv2").out_h, 14);
  EXPECT_EQ(info("s0.b0.down").out_h, 14);
  EXPECT_EQ(info("s1.b0.conv3").out_h, 7);
  at::NoGradGuard no_grad;
  EXPECT_EQ(subnet->forward(at::zeros({2, 1, 28, 28})).sizes(), (at::IntArrayRef{2, 10}));
}

TEST(ResNet, DepthCutRemovesWholeBlocksAndTheirPolicies) {
  auto net = tiny_resnet();
  const auto& space = net->space();
  const auto smallest = supernet::smallest_spec(space), largest = supernet::largest_spec(space);
  for (const char* unit : {".conv1", ".conv2", ".conv3"}) {
    EXPECT_TRUE(largest.policy.count(std::string("s0.b1") + unit)) << unit;
    EXPECT_FALSE(smallest.policy.count(std::string("s0.b1") + unit)) << unit;
    EXPECT_FALSE(net->extract(smallest)->units().empty());
  }
  EXPECT_FALSE(smallest.arch.count("s0.b1.expand_pct"));
  EXPECT_EQ(net->extract(smallest)->units().size(), 1u + 4u + 4u + 1u);  // stem, two first blocks, classifier
  EXPECT_EQ(net->extract(largest)->units().size(), 1u + 2u * (4u + 3u) + 1u);
  // A value for a removed block is refused, naming it.
  auto bad = smallest;
  bad.arch["s0.b1.expand_pct"] = 25;
  qnas::testing::expect_error([&] { net->extract(bad); }, {"'s0.b1.expand_pct' is set", "s0.depth < 2 removes that block"});
}

TEST(ResNet, EveryStagesFirstBlockHasADownsamplePathWithAPolicy) {
  auto net = tiny_resnet();
  const auto& layers = net->space().layers;
  EXPECT_TRUE(has(layers, "s0.b0.down"));
  EXPECT_TRUE(has(layers, "s1.b0.down"));
  EXPECT_FALSE(has(layers, "s0.b1.down"));
  EXPECT_EQ(layers.front(), "stem");
  EXPECT_EQ(layers.back(), "classifier");
  EXPECT_NE(net->space().find("s1.b0.down.weight_bits"), nullptr);
  // At block granularity the downsample path shares its block's genes.
  auto cfg = qnas::testing::tiny_config("", "resnet");
  cfg.quant.granularity = "block";
  const auto block_net = tiny_resnet(cfg);
  const auto* v = block_net->space().find("s1.b0.weight_bits");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->layers, (std::vector<std::string>{"s1.b0.conv1", "s1.b0.conv2", "s1.b0.conv3", "s1.b0.down"}));
}

TEST(ResNet, GlobalWidthIsOneGeneForEveryStage) {
  auto cfg = qnas::testing::tiny_config("", "resnet");
  cfg.supernet.resnet.width_scope = "global";
  auto net = tiny_resnet(cfg);
  EXPECT_NE(net->space().find("width_pct"), nullptr);
  EXPECT_EQ(net->space().find("s0.width_pct"), nullptr);
  auto spec = supernet::largest_spec(net->space());
  spec.arch["width_pct"] = 50;
  const auto subnet = net->extract(spec);
  EXPECT_EQ(subnet->unit("s0.b0.conv3")->weight.size(0), 16);  // make_divisible(12)
  EXPECT_EQ(subnet->unit("s1.b0.conv3")->weight.size(0), 16);  // 50% of 32
}
