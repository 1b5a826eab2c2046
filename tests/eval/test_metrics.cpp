// Metrics of a tiny subnet computed by hand, packed sizes, and BN
// recalibration against statistics computed directly.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "src/eval/evaluator.hpp"
#include "src/eval/metrics.hpp"
#include "supernet/mbv3.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

namespace {

// stem 1->8 (3x3, 28x28) | block: pw1 8->16 (28x28), dw 16 k3 s2 (14x14), pw2 16->16 |
// head.expand 16->32 (14x14) | mix 32->16 | classifier 16->10.
core::Config hand_config() {
  auto c = qnas::testing::tiny_config();
  c.supernet.mbv3.stem_width = 8;
  c.supernet.mbv3.stages = {{16, 2, false, "relu"}};
  c.supernet.mbv3.kernel = {3};
  c.supernet.mbv3.expand = {2};
  c.supernet.mbv3.depth = {1};
  c.supernet.mbv3.head_width = 32;
  c.supernet.mbv3.feature_width = 16;
  return c;
}

std::vector<supernet::LayerInfo> hand_layers(const quant::LayerPolicy& policy) {
  torch::manual_seed(0);
  auto net = supernet::make_supernet(hand_config(), {1, 28, 28, 10});
  auto spec = supernet::with_uniform_policy(supernet::largest_spec(net->space()), policy);
  return net->extract(spec)->layer_infos();
}

}  // namespace

TEST(Metrics, TinySubnetByHand) {
  const auto layers = hand_layers({32, 32, "rtn", {}});
  ASSERT_EQ(layers.size(), 7u);
  // weights + biases: 72+8, 128+16, 144+16, 256+16, 512+32, 512+16, 160+10
  EXPECT_EQ(eval::total_params(layers), 1898);
  // MACs: 8*9*784, 16*8*784, 16*9*196, 16*16*196, 32*16*196, 32*16, 16*10
  EXPECT_EQ(layers[0].macs(), 56448);
  EXPECT_EQ(layers[2].macs(), 28224);
  EXPECT_EQ(eval::total_macs(layers), 336224);
  EXPECT_EQ(eval::total_bops(layers), 336224LL * 32 * 32);
  EXPECT_EQ(eval::model_bytes(layers), 4 * 1898);  // fp32: 4 bytes per parameter
  EXPECT_EQ(eval::total_bops(hand_layers({8, 8, "rtn", {}})), 336224LL * 64);
  EXPECT_EQ(eval::total_bops(hand_layers({4, 32, "rtn", {}})), 336224LL * 128);
}

TEST(Metrics, ModelBytesPacksWeights) {
  // Per layer at w4a8: ceil(n*4/8) + 4*out (scales) + 4*bias + 5 (input scale + zero point).
  const auto layers = hand_layers({4, 8, "rtn", {}});
  EXPECT_EQ(eval::layer_bytes(layers[0]), 36 + 32 + 32 + 5);
  EXPECT_EQ(eval::model_bytes(layers), 105 + 197 + 205 + 261 + 517 + 389 + 165);
  const auto metrics = eval::cost_metrics(layers);
  EXPECT_EQ(metrics.at("model_bytes"), 1839);
  EXPECT_EQ(metrics.at("params"), 1898);
}

TEST(Metrics, FourBitLayerIsPackedSizePlusScales) {
  supernet::LayerInfo l;
  l.kind = "dwconv";
  l.out_channels = 1;
  l.weight_numel = 9;  // odd: 36 bits round up to 5 bytes
  l.policy.weight_bits = 4;
  EXPECT_EQ(eval::packed_weight_bytes(l), 5);
  EXPECT_EQ(eval::weight_bytes(l), 5 + 4);
  l.weight_numel = 1001;
  l.out_channels = 7;
  l.policy.weight_bits = 3;
  EXPECT_EQ(eval::weight_bytes(l), (1001 * 3 + 7) / 8 + 7 * 4);
  l.policy.weight_bits = 32;
  EXPECT_EQ(eval::weight_bytes(l), 4004);  // no scales at fp32
}

TEST(Metrics, FactorizedConvCountsItsThreeParts) {
  supernet::LayerInfo l;
  l.name = "conv", l.kind = "conv";
  l.in_channels = 16, l.out_channels = 32, l.kernel = 3, l.stride = 2, l.out_h = l.out_w = 7;
  l.weight_numel = 32 * 16 * 9, l.bias_numel = 32;
  l.policy = {8, 8, "admm_cp", {{"rank_rate", 2}}};
  // R = floor(32*16*9 / (32+16+9) / 2) = 40: 1x1 16->40 at 14x14, dw 3x3 on 40 at 7x7, 1x1 40->32 at 7x7.
  const auto parts = eval::deployed_parts(l);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1].kind, "dwconv");
  EXPECT_EQ(eval::layer_macs(l), 40 * 16 * 196 + 40 * 9 * 49 + 32 * 40 * 49);
  EXPECT_EQ(eval::layer_bops(l), 64 * eval::layer_macs(l));
  EXPECT_EQ(eval::layer_params(l), 40 * 16 + 40 + 40 * 9 + 40 + 32 * 40 + 32);
  // 8-bit codes, an fp32 scale per output channel and bias, a scale + zero point per input.
  EXPECT_EQ(eval::layer_bytes(l), (640 + 8 * 40 + 5) + (360 + 8 * 40 + 5) + (1280 + 8 * 32 + 5));
  l.policy.method = "rtn";
  EXPECT_EQ(eval::deployed_parts(l).size(), 1u);
  l.policy = {8, 8, "cp_rtn", {}};  // default rate 2; a linear has two parts
  l.kind = "linear", l.kernel = 1, l.stride = 1, l.out_h = l.out_w = 1, l.weight_numel = 32 * 16;
  EXPECT_EQ(eval::deployed_parts(l).size(), 2u);
  EXPECT_EQ(eval::layer_macs(l), 16 * 5 + 5 * 32);  // R = floor(512 / 49 / 2) = 5
}

TEST(Evaluator, BnRecalibrationMatchesDirectStatistics) {
  torch::manual_seed(0);
  auto net = supernet::make_supernet(hand_config(), {1, 28, 28, 10});
  auto subnet = net->extract(supernet::largest_spec(net->space()));
  at::manual_seed(1);
  const auto x = at::randn({96, 1, 28, 28});
  eval::recalibrate_bn(*subnet, x, 32);  // three batches
  auto stem = subnet->units()[0];
  at::NoGradGuard no_grad;
  const auto z = supernet::conv_same(x, stem->weight, {}, 1, 1);
  const auto mean = z.mean({0, 2, 3});
  EXPECT_TRUE(at::allclose(stem->bn->running_mean, mean, 1e-4, 1e-5));
  // The cumulative average of per-batch unbiased variances.
  at::Tensor var = at::zeros_like(mean);
  for (int b = 0; b < 3; ++b) var += z.narrow(0, 32 * b, 32).transpose(0, 1).reshape({8, -1}).var(1) / 3;
  EXPECT_TRUE(at::allclose(stem->bn->running_var, var, 1e-4, 1e-5));
  EXPECT_FALSE(stem->bn->is_training());
}
