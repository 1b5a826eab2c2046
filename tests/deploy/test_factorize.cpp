// CP-factorized layers (admm_cp, cp_rtn) in the deployed graph: the parts
// compute the convolution of the factorized weight, lie on their grids,
// run on int8 kernels like the simulation, and are what model_bytes and
// the cost metrics count.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <set>

#include "src/deploy/compress.hpp"
#include "src/deploy/factorize.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/eval/metrics.hpp"
#include "tests/deploy/deploy_fixture.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

quant::LayerPolicy cp_policy(const std::string& method, int w, int a, double rank_rate) {
  auto p = policy(w, a);
  p.method = method;
  p.params = {{"rank_rate", rank_rate}};
  quant::check_policy(p, "test");
  return p;
}

// A dense layer node with a random weight of shape `shape` and bias.
deploy::Node layer_node(deploy::OpKind kind, std::vector<int64_t> shape, int64_t stride, const quant::LayerPolicy& p) {
  deploy::Node n;
  n.kind = kind;
  n.name = "layer";
  n.policy = p;
  n.weight_bits = p.weight_bits;
  n.int8 = true;
  n.stride = stride;
  n.padding = shape.size() == 4 ? shape[3] / 2 : 0;
  n.weight = at::randn(shape);
  n.bias = at::randn({shape[0]});
  return n;
}

at::Tensor run_parts(const std::vector<deploy::Node>& parts, at::Tensor x) {
  for (const auto& p : parts) x = deploy::run_fp32_node(p, {x});
  return x;
}

}  // namespace

TEST(Factorize, PartsComputeTheFactorizedWeightsLayer) {
  at::manual_seed(0);
  struct Case {
    deploy::OpKind kind;
    std::vector<int64_t> shape, input;
    int64_t stride;
    size_t parts;
  };
  const std::vector<Case> cases = {{deploy::OpKind::kConv, {10, 6, 3, 3}, {2, 6, 9, 9}, 2, 3},
                                   {deploy::OpKind::kConv, {8, 12, 1, 1}, {2, 12, 5, 5}, 2, 2},
                                   {deploy::OpKind::kLinear, {6, 16}, {3, 16}, 1, 2}};
  for (const auto& method : {"admm_cp", "cp_rtn"})
    for (const auto& c : cases) {
      const auto n = layer_node(c.kind, c.shape, c.stride, cp_policy(method, 4, 8, 1.5));
      const auto f = deploy::factorize(n, n.weight);
      ASSERT_EQ(f.parts.size(), c.parts) << method;
      EXPECT_EQ(f.parts.back().name, "layer");  // the part that carries the layer's bias and output
      const auto x = at::randn(c.input);
      auto whole = n;
      whole.weight = f.weight;
      const auto expected = deploy::run_fp32_node(whole, {x});
      const auto got = run_parts(f.parts, x);
      EXPECT_LT(((got - expected).abs().max() / expected.abs().max()).item<double>(), 1e-5) << method << " " << c.parts;
      for (const auto& p : f.parts) {
        EXPECT_TRUE(p.int8 && !p.general_grid()) << p.name;
        EXPECT_LE(p.weight_codes.abs().max().item<int>(), 7) << p.name;  // 4-bit symmetric codes
        // One step per tensor, except the K = 1 first part (C folded into its rows).
        if (c.parts == 3 || p.name == "layer") {
          EXPECT_EQ(p.weight_scales.max().item<double>(), p.weight_scales.min().item<double>()) << p.name;
        }
      }
      const auto rank = f.parts.front().weight.size(0);
      EXPECT_EQ(rank, quant::cp_rank(c.shape[0], c.shape[1], n.weight.numel() / (c.shape[0] * c.shape[1]), 1.5));
    }
}

TEST(Factorize, AdmmFindsCloserFactorsThanRoundingCpAls) {
  at::manual_seed(1);
  // A rank-8 conv weight plus noise, factorized at rank 8 on 3-bit grids.
  const auto a = at::randn({24, 8}), b = at::randn({16, 8}), c = at::randn({9, 8});
  const auto w = (at::einsum("ir,jr,kr->ijk", {a, b, c}) + 0.05 * at::randn({24, 16, 9})).reshape({24, 16, 3, 3});
  const double rate = 24.0 * 16 * 9 / (24 + 16 + 9) / 8;
  auto n = layer_node(deploy::OpKind::kConv, {24, 16, 3, 3}, 1, cp_policy("admm_cp", 3, 8, rate));
  const auto admm = deploy::factorize(n, w);
  n.policy.method = "cp_rtn";
  const auto rounded = deploy::factorize(n, w);
  EXPECT_EQ(admm.rank, 8);
  EXPECT_LT(admm.relative_error, rounded.relative_error);
  const auto error = [&](const at::Tensor& v) { return ((v - w).norm() / w.norm()).item<double>(); };
  EXPECT_NEAR(error(admm.weight), admm.relative_error, 1e-4);  // the weight is the factors' product
}

TEST(Factorize, FactorizedSubnetRunsOnInt8AndItsCostsCountTheParts) {
  auto net = tiny_net();
  const auto p = cp_policy("admm_cp", 4, 8, 1.5);
  const auto spec = supernet::largest_spec(net->space(), p);
  auto d = deploy_spec(net, spec);
  ASSERT_TRUE(deploy::needs_compression(d.graph));
  size_t weight_nodes = 0;
  for (const auto& n : d.graph.nodes) weight_nodes += n.has_weight();
  deploy::CompressSettings settings;
  settings.hessian_images = 128;
  settings.batch_size = 128;
  const auto report = deploy::compress_weights(d.graph, *d.subnet, batch(data().train, 256), settings);
  ASSERT_FALSE(report.empty());
  size_t parts = 0, expected_parts = weight_nodes;
  for (const auto& r : report) expected_parts += r.rank > 0 ? 1 : 0;  // every layer here is 1x1 or linear but the stem
  for (const auto& n : d.graph.nodes) parts += n.has_weight();
  const auto layers = net->layer_infos(spec);
  for (const auto& l : layers)
    if (l.name == "stem") ++expected_parts;  // 3x3: three parts
  EXPECT_EQ(parts, expected_parts);
  for (const auto& r : report) EXPECT_GT(r.rank, 0) << r.layer;
  for (const auto& n : d.graph.nodes)
    if (n.has_weight()) {
      EXPECT_TRUE(n.int8) << n.name;
    }
  // The graph's bytes (what an export holds) grow from round-to-nearest's as
  // the cost model's do.
  const auto rtn_spec = supernet::largest_spec(net->space(), policy(4, 8));
  EXPECT_EQ(d.graph.model_bytes() - deploy_spec(net, rtn_spec).graph.model_bytes(),
            eval::model_bytes(layers) - eval::model_bytes(net->layer_infos(rtn_spec)));
  c10::InferenceMode guard;
  const auto x = batch(data().test, 128);
  const auto sim = deploy::simulate(d.graph, x);
  const auto int8 = deploy::Int8Model(d.graph).forward(x);
  EXPECT_LT(((sim - int8).abs().max() / sim.abs().max()).item<double>(), 0.05);
}

// BN recalibration after factorizing (REFERENCES.md §5): on the calibration
// images (weights quantized, activations fp32, as it measures) each
// factorized layer that had a BN again has the BN's output mean (beta) and
// standard deviation (|gamma|) before its activation.
TEST(Factorize, BnRecalibrationRestoresTheBnStatisticsOfFactorizedLayers) {
  auto net = tiny_net();
  const auto spec = supernet::largest_spec(net->space(), cp_policy("cp_rtn", 4, 8, 2));
  auto d = deploy_spec(net, spec);
  deploy::CompressSettings settings;
  settings.hessian_images = 128;
  settings.batch_size = 64;
  const auto images = batch(data().train, 256);
  std::set<std::string> factorized;
  for (const auto& r : deploy::compress_weights(d.graph, *d.subnet, images, settings))
    if (r.rank > 0) factorized.insert(r.layer);
  const auto calib = images.narrow(0, 0, settings.hessian_images);
  int checked = 0;
  for (const auto& u : d.subnet->units()) {
    if (!u->folded_gamma.defined() || !factorized.count(u->desc().name)) continue;
    size_t k = 0;
    while (k < d.graph.nodes.size() && !(d.graph.nodes[k].has_weight() && d.graph.nodes[k].name == u->desc().name)) ++k;
    ASSERT_LT(k, d.graph.nodes.size()) << u->desc().name;
    auto linear = d.graph.nodes[k];
    linear.act = supernet::Act::kNone;
    at::Tensor sum, sum_sq;
    deploy::visit_inputs(d.graph, k, calib, 64, [&](const std::vector<at::Tensor>& in) {
      const auto y = deploy::run_fp32_node(linear, in).to(at::kDouble);
      sum = sum.defined() ? sum + y.sum({0, 2, 3}) : y.sum({0, 2, 3});
      sum_sq = sum_sq.defined() ? sum_sq + y.square().sum({0, 2, 3}) : y.square().sum({0, 2, 3});
    });
    const double count = double(calib.size(0)) * double(u->desc().out_h() * u->desc().out_w());
    const auto mean = sum / count, stdev = (sum_sq / count - mean.square()).sqrt();
    const auto gamma = u->folded_gamma.to(at::kDouble).abs(), beta = u->folded_beta.to(at::kDouble);
    const auto live = gamma.gt(0.05).logical_and(stdev.gt(1e-6));  // a dead factor leaves a channel no spread
    // The means move by the int32 biases' rounding after the correction.
    EXPECT_LT(((mean - beta).abs() / (gamma + 0.05)).max().item<double>(), 0.05) << u->desc().name;
    EXPECT_LT(at::where(live, (stdev / gamma - 1).abs(), at::zeros_like(gamma)).max().item<double>(), 0.01)
        << u->desc().name;
    ++checked;
  }
  EXPECT_GT(checked, 3);
}

TEST(Factorize, BadRankRatesAndBitsAreNamed) {
  expect_error([] { cp_policy("admm_cp", 4, 8, 0.5); }, {"rank_rate 0.5", "[1, 1000]"});
  expect_error([] { cp_policy("cp_rtn", 32, 8, 2); }, {"weight_bits <= 8"});
}
