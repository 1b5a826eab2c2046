// Fake quantization: RTN error bounds, identity at 32 bits, observers,
// activation parameters.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "src/core/error.hpp"
#include "src/quant/fake_quant.hpp"

using namespace qnas;

TEST(FakeQuant, SymmetricGrid) {
  EXPECT_EQ(quant::symmetric_qmax(8), 127);
  EXPECT_EQ(quant::symmetric_qmax(4), 7);
  EXPECT_EQ(quant::symmetric_qmax(2), 1);
}

class RtnBits : public ::testing::TestWithParam<int> {};

TEST_P(RtnBits, PerElementErrorAtMostHalfAScale) {
  const int bits = GetParam();
  at::manual_seed(0);
  const auto w = at::randn({16, 8, 3, 3}) * at::rand({16, 1, 1, 1}) * 3;
  const auto scales = quant::symmetric_weight_scales(w, bits).to(at::kFloat);
  const auto q = quant::fake_quant_weight(w, bits);
  const auto err = (q - w).abs().reshape({16, -1}).amax(1);
  EXPECT_TRUE((err <= scales / 2 + 1e-6).all().item<bool>()) << "bits " << bits;
  // On the grid: q / scale is an integer within +-qmax.
  const auto codes = q.reshape({16, -1}) / scales.reshape({16, 1});
  EXPECT_TRUE(at::allclose(codes, codes.round(), 1e-4, 1e-4));
  EXPECT_LE(codes.abs().max().item<double>(), quant::symmetric_qmax(bits) + 1e-4);
  // The channel maximum is represented exactly (symmetric max scaling).
  EXPECT_TRUE(at::allclose(q.abs().reshape({16, -1}).amax(1), w.abs().reshape({16, -1}).amax(1), 1e-5, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Bits, RtnBits, ::testing::Values(2, 3, 4, 8));

TEST(FakeQuant, ThirtyTwoBitsIsIdentity) {
  const auto w = at::randn({4, 4});
  EXPECT_TRUE(quant::fake_quant_weight(w, 32).equal(w));
  EXPECT_TRUE(quant::fake_quant_act(w, quant::act_qparams_from_range(-1, 1, 32)).equal(w));
}

TEST(FakeQuant, ZeroChannelStaysZero) {
  auto w = at::randn({3, 5});
  w[1].zero_();
  EXPECT_TRUE(quant::fake_quant_weight(w, 4)[1].eq(0).all().item<bool>());
}

TEST(FakeQuant, MinMaxObserver) {
  quant::MinMaxObserver obs;
  EXPECT_FALSE(obs.seen());
  obs.observe(at::tensor({0.5f, 2.0f, -1.0f}));
  obs.observe(at::tensor({3.0f, -0.25f}));
  EXPECT_TRUE(obs.seen());
  EXPECT_DOUBLE_EQ(obs.min(), -1.0);
  EXPECT_DOUBLE_EQ(obs.max(), 3.0);
  obs.reset();
  obs.observe(at::tensor({1.0f}));
  EXPECT_DOUBLE_EQ(obs.min(), 1.0);
}

TEST(FakeQuant, ActivationParamsCoverRangeAndZero) {
  const auto q = quant::act_qparams_from_range(-1.0, 3.0, 8);
  EXPECT_NEAR(q.scale, 4.0 / 255, 1e-12);
  EXPECT_EQ(q.zero_point, 64);  // round(1 / (4/255)) = round(63.75)
  const auto pos = quant::act_qparams_from_range(0.5, 2.0, 8);  // widened to include 0
  EXPECT_EQ(pos.zero_point, 0);
  EXPECT_NEAR(pos.scale, 2.0 / 255, 1e-12);
  const auto x = at::linspace(-1, 3, 1001);
  const auto y = quant::fake_quant_act(x, q);
  EXPECT_LE((y - x).abs().max().item<double>(), q.scale / 2 + 1e-6);
  EXPECT_EQ(quant::fake_quant_act(at::zeros({3}), q).abs().sum().item<double>(), 0.0);  // 0 exact
}

TEST(FakeQuant, FusedInferencePathMatchesAten) {
  at::manual_seed(1);
  const auto q = quant::act_qparams_from_range(-2.5, 4.0, 8);
  for (auto x : {at::randn({7, 16, 9, 9}) * 2, at::randn({4, 8, 5, 5}).contiguous(at::MemoryFormat::ChannelsLast),
                 at::linspace(-3, 5, 100001)}) {
    at::Tensor fused;
    {
      at::NoGradGuard no_grad;
      fused = quant::fake_quant_act(x, q);
    }
    const auto ref = at::fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, 255);
    EXPECT_TRUE(fused.equal(ref)) << (fused - ref).abs().max().item<double>();
    EXPECT_EQ(fused.strides(), x.strides());
  }
  // With autograd on, the straight-through gradient is kept.
  auto x = at::randn({10}).requires_grad_();
  quant::fake_quant_act(x, q).sum().backward();
  EXPECT_TRUE(x.grad().defined());
}

// Quantization-aware training: the forward is the fake-quantized tensor,
// the backward the identity's (straight-through).
TEST(FakeQuant, StraightThroughWeightGradient) {
  at::manual_seed(3);
  const auto w = at::randn({6, 4, 3, 3}).requires_grad_(true);
  const auto upstream = at::randn({6, 4, 3, 3});
  const auto q = quant::fake_quant_weight_ste(w, 4);
  // w + (q - w) in float: the grid's value up to rounding.
  EXPECT_TRUE(at::allclose(q.detach(), quant::fake_quant_weight(w.detach(), 4), 0, 1e-6));
  EXPECT_GT((q - w).abs().max().item<double>(), 0.0);  // 4 bits do change the weight
  (q * upstream).sum().backward();
  EXPECT_TRUE(at::allclose(w.grad(), upstream));
  EXPECT_TRUE(quant::fake_quant_weight_ste(w, 32).is_same(w));
}

TEST(FakeQuant, StraightThroughActivationOnItsBatchRange) {
  at::manual_seed(4);
  const auto x = (at::rand({8, 16}) * 5 - 1).requires_grad_(true);
  const auto y = quant::fake_quant_act_ste(x, 8);
  // The grid spans the batch's own range: nothing is clipped, every value
  // lies within half a step of its input, and the gradient passes unchanged.
  const auto q = quant::act_qparams_from_range(x.min().item<double>(), x.max().item<double>(), 8);
  EXPECT_LE((y - x).abs().max().item<double>(), q.scale / 2 + 1e-6);
  EXPECT_TRUE(at::equal(y.detach(), quant::fake_quant_act(x.detach(), q)));
  const auto upstream = at::randn({8, 16});
  (y * upstream).sum().backward();
  EXPECT_TRUE(at::allclose(x.grad(), upstream));
  EXPECT_TRUE(quant::fake_quant_act_ste(x, 32).is_same(x));
}
