// Weight grids (observers, RTN), layer Hessians, GPTQ, decoupleQ, activation
// observers and SmoothQuant against their definitions.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <functional>

#include "src/core/error.hpp"
#include "src/quant/act_observer.hpp"
#include "src/quant/decoupleq.hpp"
#include "src/quant/gptq.hpp"
#include "src/quant/grid.hpp"
#include "src/quant/hessian.hpp"
#include "src/quant/smoothquant.hpp"

using namespace qnas;
using quant::Clip;
using quant::Granularity;

namespace {

double squared_error(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).square().sum().item<double>();
}

// Inputs with strongly correlated columns: x = z A, A random mixing.
at::Tensor correlated_inputs(int64_t n, int64_t cols, uint64_t seed) {
  at::manual_seed(seed);
  const auto mix = at::randn({cols, cols}, at::kDouble) + 2.0 * at::eye(cols, at::kDouble);
  return at::matmul(at::randn({n, cols}, at::kDouble), mix);
}

at::Tensor hessian_of(const at::Tensor& x) {
  quant::HessianAccumulator acc({x.size(1), 1, 1, 1, true});
  acc.add(x);
  return acc.mean();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Grid, MseClippingFindsTheErrorMinimumOfAHeavyTailedTensor) {
  at::manual_seed(1);
  // Student-t-like: Gaussian over a random scale, a few large outliers.
  const auto w = (at::randn({1, 4096}, at::kDouble) / at::rand({1, 4096}, at::kDouble).add(0.05).sqrt());
  quant::GridSpec spec;
  spec.bits = 4;
  spec.granularity = Granularity::kTensor;
  spec.clip = Clip::kMse;
  spec.mse_steps = 200;
  const double mse = squared_error(quant::rtn(w, quant::fit_grid(w, spec)), w);
  spec.clip = Clip::kMinMax;
  const auto minmax_grid = quant::fit_grid(w, spec);
  const double minmax = squared_error(quant::rtn(w, minmax_grid), w);
  // Brute force over a finer set of clip ratios.
  double best = minmax;
  const double amax = w.abs().max().item<double>();
  for (int i = 1; i <= 2000; ++i) {
    const double s = amax * (1.0 - 0.8 * i / 2000.0) / 7.0;
    best = std::min(best, squared_error(at::clamp(at::round(w / s), -7, 7) * s, w));
  }
  EXPECT_LT(mse, 0.5 * minmax);       // clipping matters on heavy tails
  EXPECT_LE(mse, best * 1.01);        // and the grid search finds (nearly) the minimum
}

TEST(Grid, ShapesPerTensorChannelAndGroup) {
  at::manual_seed(2);
  const auto w = at::randn({6, 32});
  quant::GridSpec spec;
  spec.bits = 3;
  spec.granularity = Granularity::kGroup;
  spec.group_size = 8;
  const auto g = quant::fit_grid(w, spec);
  EXPECT_EQ(g.scale.sizes(), (at::IntArrayRef{6, 4}));
  // Each group's scale covers exactly its own maximum.
  const auto amax = w.to(at::kDouble).reshape({6, 4, 8}).abs().amax(-1);
  EXPECT_TRUE(at::allclose(g.scale * 3, amax));
  spec.granularity = Granularity::kTensor;
  const auto t = quant::fit_grid(w, spec);
  EXPECT_EQ(t.scale.sizes(), (at::IntArrayRef{6, 1}));
  EXPECT_NEAR(t.scale.max().item<double>(), t.scale.min().item<double>(), 0);
  // Asymmetric: codes in [0, 2^b - 1], zero exactly representable.
  spec.symmetric = false;
  spec.granularity = Granularity::kChannel;
  const auto a = quant::fit_grid(w, spec);
  const auto codes = quant::grid_codes(w, a);
  EXPECT_GE(codes.min().item<double>(), 0);
  EXPECT_LE(codes.max().item<double>(), 7);
  const auto zp = -a.zero / a.scale;
  EXPECT_TRUE(at::allclose(zp, at::round(zp)));
  EXPECT_LE(squared_error(quant::rtn(w, a), w), squared_error(quant::rtn(w, t), w));
}

TEST(Grid, PercentileClipsAtTheQuantile) {
  at::manual_seed(3);
  const auto w = at::randn({4, 1000}, at::kDouble);
  quant::GridSpec spec;
  spec.bits = 8;
  spec.clip = Clip::kPercentile;
  spec.percentile = 99.0;
  const auto g = quant::fit_grid(w, spec);
  EXPECT_TRUE(at::allclose(g.scale.squeeze(1) * 127, at::quantile(w.abs(), 0.99, 1)));
}

TEST(Grid, BadSpecsAreNamed) {
  const auto w = at::randn({4, 12});
  quant::GridSpec spec;
  spec.bits = 9;
  EXPECT_NE(error_of([&] { quant::fit_grid(w, spec); }).find("9-bit weights; expected 2..8"), std::string::npos);
  spec.bits = 4;
  spec.granularity = Granularity::kGroup;
  spec.group_size = 5;
  EXPECT_NE(error_of([&] { quant::fit_grid(w, spec); }).find("group size 5 does not divide the 12 input columns"),
            std::string::npos);
}

TEST(Hessian, ConvPatchesGiveTheOutputErrorOfTheConvolution) {
  // trace(dW H dW^T) * samples == |conv(x, W) - conv(x, W~)|^2, dense and depthwise.
  at::manual_seed(4);
  const auto x = at::randn({3, 4, 7, 7}, at::kDouble);
  for (int64_t groups : {1, 4}) {
    const auto w = at::randn({4, 4 / groups, 3, 3}, at::kDouble), w_hat = w + 0.1 * at::randn_like(w);
    quant::HessianAccumulator acc({4, 3, 2, groups, false, 0, 0, /*padding=*/1});
    acc.add(x.narrow(0, 0, 2));
    acc.add(x.narrow(0, 2, 1));
    const auto h = acc.mean();
    EXPECT_EQ(h.size(0), groups == 1 ? 1 : 4);
    const auto y = at::conv2d(x, w, {}, 2, 1, 1, groups), y_hat = at::conv2d(x, w_hat, {}, 2, 1, 1, groups);
    const double rel = quant::relative_output_error(quant::as_matrix(w), quant::as_matrix(w_hat), h);
    EXPECT_NEAR(rel, squared_error(y, y_hat) / y.square().sum().item<double>(), 1e-9) << "groups " << groups;
  }
}

class GptqGrids : public ::testing::TestWithParam<int> {};

TEST_P(GptqGrids, EqualsRtnWhenHIsTheIdentity) {
  at::manual_seed(5);
  const auto w = at::randn({8, 64}, at::kDouble);
  quant::GptqOptions o;
  o.grid.bits = GetParam();
  o.block_size = 16;
  for (auto gran : {Granularity::kChannel, Granularity::kGroup}) {
    o.grid.granularity = gran;
    o.grid.group_size = 16;
    const auto q = quant::gptq(w, at::eye(64, at::kDouble).unsqueeze(0), o);
    EXPECT_TRUE(at::equal(q.weight(), quant::rtn(w, quant::fit_grid(w, o.grid)))) << "bits " << GetParam();
  }
}

TEST_P(GptqGrids, LowerOutputErrorThanRtnOnCorrelatedInputs) {
  const int bits = GetParam();
  const auto x = correlated_inputs(2048, 48, 6);
  const auto h = hessian_of(x);
  at::manual_seed(7);
  const auto w = at::randn({16, 48}, at::kDouble);
  for (bool act_order : {false, true})
    for (auto gran : {Granularity::kChannel, Granularity::kGroup}) {
      quant::GptqOptions o;
      o.grid.bits = bits;
      o.grid.symmetric = false;
      o.grid.granularity = gran;
      o.grid.group_size = 12;
      o.block_size = 20;  // not a multiple of the group size: groups straddle blocks
      o.act_order = act_order;
      const auto q = quant::gptq(w, h, o);
      EXPECT_GE(q.codes.min().item<double>(), q.grid.qmin());
      EXPECT_LE(q.codes.max().item<double>(), q.grid.qmax());
      const double gptq_err = quant::relative_output_error(w, q.weight(), h);
      const double rtn_err = quant::relative_output_error(w, quant::rtn(w, quant::fit_grid(w, o.grid)), h);
      EXPECT_LT(gptq_err, 0.9 * rtn_err) << "bits " << bits << " act_order " << act_order;
    }
}

INSTANTIATE_TEST_SUITE_P(Bits, GptqGrids, ::testing::Values(2, 3, 4, 8));

TEST(Gptq, BatchedHessiansEqualSeparateRows) {
  // A depthwise layer: each row has its own H; one batched call equals one call per row.
  at::manual_seed(8);
  const auto w = at::randn({3, 9}, at::kDouble);
  std::vector<at::Tensor> hs;
  for (int i = 0; i < 3; ++i) hs.push_back(hessian_of(correlated_inputs(500, 9, 10 + i)));
  quant::GptqOptions o;
  o.grid.bits = 3;
  const auto batched = quant::gptq(w, at::cat(hs, 0), o);
  for (int64_t i = 0; i < 3; ++i) {
    const auto one = quant::gptq(w.narrow(0, i, 1), hs[size_t(i)], o);
    EXPECT_TRUE(at::allclose(batched.weight().narrow(0, i, 1), one.weight(), 1e-12, 1e-12)) << "row " << i;
  }
}

TEST(Gptq, DeadInputsGetZeroWeights) {
  auto x = correlated_inputs(400, 10, 9);
  x.select(1, 3).zero_();
  quant::GptqOptions o;
  o.grid.bits = 4;
  const auto q = quant::gptq(at::randn({4, 10}, at::kDouble), hessian_of(x), o);
  EXPECT_EQ(q.weight().select(1, 3).abs().max().item<double>(), 0.0);
}

// --- decoupleQ ---------------------------------------------------------------

TEST(Decoupleq, FloatStepIsTheLeastSquaresSolution) {
  const auto h = hessian_of(correlated_inputs(1000, 24, 12));
  at::manual_seed(13);
  const auto w = at::randn({5, 24}, at::kDouble);
  quant::GridSpec spec;
  spec.bits = 2;
  spec.symmetric = false;
  spec.granularity = Granularity::kGroup;
  spec.group_size = 8;
  const auto start = quant::fit_grid(w, spec);
  const auto codes = quant::grid_codes(w, start);
  const auto fitted = quant::least_squares_grid(w, codes, h, start);
  // Independent: with H = L L^T, least squares of L^T (D t - w) over the design D.
  const auto l = at::linalg_cholesky(h[0]);
  for (int64_t i = 0; i < 5; ++i) {
    auto d = at::zeros({24, 6}, at::kDouble);
    for (int64_t c = 0; c < 24; ++c) {
      d[c][c / 8] = codes[i][c];
      d[c][3 + c / 8] = 1.0;
    }
    const auto t = std::get<0>(at::linalg_lstsq(at::matmul(l.t(), d), at::matmul(l.t(), w[i].unsqueeze(1))));
    // The fit adds a 1e-10 relative jitter to the normal equations' diagonal,
    // which moves the solution by about cond(D^T H D) x 1e-10 (up to 2.3e-7
    // measured; how much depends on the host's LAPACK kernels).
    EXPECT_TRUE(at::allclose(fitted.scale[i], t.squeeze(1).narrow(0, 0, 3), 1e-6, 1e-6))
        << "row " << i << ": max diff " << (fitted.scale[i] - t.squeeze(1).narrow(0, 0, 3)).abs().max().item<double>();
    EXPECT_TRUE(at::allclose(fitted.zero[i], t.squeeze(1).narrow(0, 3, 3), 1e-6, 1e-6))
        << "row " << i << ": max diff " << (fitted.zero[i] - t.squeeze(1).narrow(0, 3, 3)).abs().max().item<double>();
  }
}

class DecoupleqSteps : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoupleqSteps, RowLossNeverIncreasesCodesStayInRangeAndItBeatsGptq) {
  const auto x = correlated_inputs(3000, 32, 14);
  const auto h = hessian_of(x);
  at::manual_seed(15);
  const auto w = at::randn({12, 32}, at::kDouble) * at::rand({12, 1}, at::kDouble).add(0.5);
  for (auto gran : {Granularity::kChannel, Granularity::kGroup}) {
    quant::DecoupleqOptions o;
    o.bits = 2;
    o.granularity = gran;
    o.group_size = 16;
    o.integer_step = GetParam();
    o.iterations = 5;
    const auto r = quant::decoupleq(w, h, o);
    ASSERT_GE(r.row_loss.size(), 3u);
    for (size_t k = 1; k < r.row_loss.size(); ++k)
      EXPECT_TRUE((r.row_loss[k] <= r.row_loss[k - 1]).all().item<bool>()) << "step " << k;
    const auto& c = r.weight.codes;
    EXPECT_TRUE(at::equal(c, at::round(c)));
    EXPECT_GE(c.min().item<double>(), 0);
    EXPECT_LE(c.max().item<double>(), 3);
    quant::GptqOptions g;
    g.grid.bits = 2;
    g.grid.symmetric = false;
    g.grid.granularity = gran;
    g.grid.group_size = 16;
    const double gptq_err = quant::relative_output_error(w, quant::gptq(w, h, g).weight(), h);
    const double dq_err = quant::relative_output_error(w, r.weight.weight(), h);
    EXPECT_LT(dq_err, gptq_err) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(IntegerStep, DecoupleqSteps, ::testing::Values("gptq", "pgd"));

TEST(Decoupleq, BadOptionsAreNamed) {
  const auto w = at::randn({4, 12}, at::kDouble);
  const auto h = at::eye(12, at::kDouble).unsqueeze(0);
  quant::DecoupleqOptions o;
  o.granularity = Granularity::kGroup;
  o.group_size = 5;
  EXPECT_NE(error_of([&] { quant::decoupleq(w, h, o); }).find("group size 5 does not divide"), std::string::npos);
  o = {};
  o.iterations = 0;
  EXPECT_NE(error_of([&] { quant::decoupleq(w, h, o); }).find("0 iterations"), std::string::npos);
  o = {};
  o.integer_step = "adam";
  EXPECT_NE(error_of([&] { quant::decoupleq(w, h, o); }).find("integer step 'adam'"), std::string::npos);
  o = {};
  o.granularity = Granularity::kTensor;
  EXPECT_NE(error_of([&] { quant::decoupleq(w, h, o); }).find("per channel or per group"), std::string::npos);
}

// --- Activation observers ------------------------------------------------------

TEST(ActObserver, PercentileClipsAtTheQuantileMseNearItsMinimumSampleBounded) {
  quant::ActObserverSpec spec;
  spec.bits = 4;
  spec.sample_cap = 16384;  // a quarter of the values
  at::manual_seed(16);
  // Post-ReLU activations with a heavy (Student-t-like) tail, in 10 batches.
  std::vector<at::Tensor> batches;
  for (int i = 0; i < 10; ++i) batches.push_back(at::relu(at::randn({8, 16, 7, 7}) / at::rand({8, 16, 7, 7}).add(0.05).sqrt()));
  const auto all = at::cat(batches).flatten().to(at::kDouble);
  const auto mse_of = [&](const quant::ActQParams& q) {
    return (quant::fake_quant_act(all.to(at::kFloat), q).to(at::kDouble) - all).square().sum().item<double>();
  };
  double err[3];
  for (auto clip : {Clip::kMinMax, Clip::kPercentile, Clip::kMse}) {
    spec.clip = clip;
    spec.percentile = 99.0;
    quant::ActObserver obs(spec);
    for (const auto& b : batches) obs.observe(b);
    EXPECT_LE(obs.sample_size(), spec.sample_cap);
    const auto q = obs.qparams();
    EXPECT_EQ(q.bits, 4);
    err[int(clip)] = mse_of(q);
    if (clip == Clip::kPercentile) {  // the top of the range sits at the 99th percentile
      EXPECT_NEAR(q.scale * (15 - q.zero_point) / at::quantile(all, 0.99).item<double>(), 1.0, 0.05);
    }
  }
  EXPECT_LT(err[int(Clip::kMse)], 0.7 * err[int(Clip::kMinMax)]);
  // The MSE search on the sample (100 ratios) finds nearly the best clip for all the values.
  double best = err[int(Clip::kMinMax)];
  const double top = all.max().item<double>();
  for (int i = 1; i <= 1000; ++i) best = std::min(best, mse_of(quant::act_qparams_from_range(0, top * i / 1000.0, 4)));
  EXPECT_LE(err[int(Clip::kMse)], 1.05 * best);
}

TEST(ActObserver, BadSpecsAreNamed) {
  quant::ActObserverSpec spec;
  spec.percentile = 30;
  EXPECT_NE(error_of([&] { quant::ActObserver o(spec); }).find("percentile 30; expected (50, 100]"), std::string::npos);
  EXPECT_NE(error_of([&] { quant::ActObserver o; o.qparams(); }).find("no values observed"), std::string::npos);
}

// --- SmoothQuant -----------------------------------------------------------------

TEST(SmoothQuant, SmoothedLayerComputesTheSameOutputWithoutQuantization) {
  at::manual_seed(17);
  // Activations with a few outlier channels, as SmoothQuant targets.
  auto x = at::randn({4, 6, 9, 9}) * at::tensor({1.f, 30.f, 0.5f, 1.f, 8.f, 1.f}).reshape({1, 6, 1, 1});
  quant::ChannelAbsMax obs;
  obs.observe(x.narrow(0, 0, 2));
  obs.observe(x.narrow(0, 2, 2));
  EXPECT_TRUE(at::allclose(obs.amax(), x.abs().amax({0, 2, 3})));
  for (int64_t groups : {1, 6}) {
    const auto w = at::randn({6, 6 / groups, 3, 3});
    for (double alpha : {0.0, 0.5, 0.85, 1.0}) {
      const auto s = quant::smoothing_factors(obs.amax(), w, groups, alpha);
      const auto y = at::conv2d(x, w, {}, 1, 1, 1, groups);
      const auto y_smooth =
          at::conv2d(x / s.reshape({1, 6, 1, 1}), quant::smooth_weight(w, s, groups), {}, 1, 1, 1, groups);
      EXPECT_TRUE(at::allclose(y_smooth, y, 1e-4, 1e-4)) << "groups " << groups << " alpha " << alpha;
    }
    // alpha 1 moves everything onto the weights: the smoothed activation's channels all peak at 1.
    const auto s1 = quant::smoothing_factors(obs.amax(), w, groups, 1.0);
    EXPECT_TRUE(at::allclose((x / s1.reshape({1, 6, 1, 1})).abs().amax({0, 2, 3}), at::ones({6}), 1e-5, 1e-5));
  }
  const auto lw = at::randn({3, 6});
  const auto v = at::randn({5, 6}) * 4;
  const auto s = quant::smoothing_factors(v.abs().amax(0), lw, 1, 0.5);
  EXPECT_TRUE(at::allclose(at::matmul(v / s, quant::smooth_weight(lw, s, 1).t()), at::matmul(v, lw.t()), 1e-4, 1e-4));
}

TEST(SmoothQuant, AlphaOutsideTheUnitIntervalIsNamed) {
  const auto w = at::randn({3, 6});
  EXPECT_NE(error_of([&] { quant::smoothing_factors(at::ones({6}), w, 1, 1.5); }).find("alpha 1.5; expected a value in [0, 1]"),
            std::string::npos);
}

TEST(Hessian, SampledPositionsApproximateTheFullMoment) {
  // Smooth images (neighbouring pixels correlated, as activations are): a
  // quarter of the positions gives nearly the same H.
  at::manual_seed(18);
  const auto x = at::avg_pool2d(at::randn({64, 3, 18, 18}, at::kDouble), 3, 1);  // 16 x 16
  quant::HessianAccumulator all({3, 3, 1, 1, false, 0, 0, 1}), some({3, 3, 1, 1, false, 64, 0, 1});
  all.add(x);
  some.add(x);
  EXPECT_EQ(all.samples(), 64 * 256);
  EXPECT_EQ(some.samples(), 64 * 64);
  EXPECT_LT(((some.mean() - all.mean()).abs().max() / all.mean().abs().max()).item<double>(), 0.1);
}

TEST(Hessian, TokensAreSamplesOfALinearsInput) {
  // [N, T, C] tokens: every token a sample, as the rows of [N * T, C].
  const auto x = correlated_inputs(6 * 5, 4, 9).to(at::kFloat);
  quant::HessianAccumulator tokens({4, 1, 1, 1, true});
  tokens.add(x.reshape({6, 5, 4}));
  EXPECT_TRUE(at::allclose(tokens.mean(), hessian_of(x), 1e-6, 1e-6));
  quant::HessianAccumulator wrong({4, 1, 1, 1, true});
  EXPECT_NE(error_of([&] { wrong.add(at::zeros({2, 4, 3})); }).find("tokens [N, T, 4]"), std::string::npos);
}
