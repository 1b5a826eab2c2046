// QuantuneV2's two passes on a real subnet: a layer made fragile on purpose
// (one huge input column, the fp32 function unchanged) ranks first; the
// mixed-precision allocation keeps the deployed graph's model_bytes within
// every budget, monotone in it.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "src/deploy/sensitivity.hpp"
#include "src/eval/sensitivity.hpp"
#include "tests/deploy/deploy_fixture.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

supernet::ConvUnit unit(const supernet::SubnetImpl& s, const std::string& name) {
  for (const auto& u : s.units())
    if (u->desc().name == name) return u;
  ADD_FAILURE() << "no unit " << name;
  return nullptr;
}

// Moves a factor 1000 from the dw layer's channel 0 (weights and bias
// divided, exact through the ReLU after it) into pw2's input column 0: the
// fp32 function stays, but pw2's per-channel weight grids are now set by one
// huge column and round every other weight to zero.
void make_pw2_fragile(supernet::SubnetImpl& s) {
  at::NoGradGuard no_grad;
  auto dw = unit(s, "s0.b0.dw"), pw2 = unit(s, "s0.b0.pw2");
  ASSERT_EQ(dw->desc().act, supernet::Act::kRelu);
  dw->weight[0].div_(1000);
  dw->bias[0].div_(1000);
  pw2->weight.select(1, 0).mul_(1000);
}

struct Passes {
  deploy::Graph reference, quantized;
};

Passes passes(supernet::SubnetImpl& s, const quant::LayerPolicy& p) {
  Passes out;
  s.set_policies(supernet::with_uniform_policy(s.spec(), policy(32, 32)).policy);
  out.reference = deploy::build_graph(s, eval::input_desc(data()));
  deploy::calibrate(out.reference, batch(data().train, 256), 128);
  s.set_policies(supernet::with_uniform_policy(s.spec(), p).policy);
  out.quantized = deploy::build_graph(s, eval::input_desc(data()));
  deploy::calibrate(out.quantized, batch(data().train, 256), 128);
  return out;
}

std::vector<quant::LayerSensitivity> scored(const Passes& p) {
  return deploy::measure_sensitivity(p.reference, p.quantized, batch(data().train, 256), 128);
}

}  // namespace

TEST(Sensitivity, ALayerWithAnOutlierColumnRanksFirst) {
  const auto net = trained_tiny_net();
  auto d = deploy_spec(net, supernet::largest_spec(net->space(), policy(32, 32)));
  const auto before = scored(passes(*d.subnet, policy(4, 32)));
  ASSERT_EQ(before.size(), d.subnet->spec().policy.size());  // every compressible layer is measured
  EXPECT_NE(before[quant::ranking(before)[0]].layer, "s0.b0.pw2");  // not fragile by itself

  const auto x = batch(data().test, 128);
  const auto logits_of = [&](const deploy::Graph& g) {
    c10::InferenceMode guard;
    return deploy::simulate(g, x);
  };
  const auto logits = logits_of(passes(*d.subnet, policy(32, 32)).reference);
  make_pw2_fragile(*d.subnet);
  const auto fragile = passes(*d.subnet, policy(4, 32));
  EXPECT_TRUE(at::allclose(logits_of(fragile.reference), logits, 1e-3, 1e-3));  // the same fp32 function
  const auto after = scored(fragile);
  const auto& first = after[quant::ranking(after)[0]];
  EXPECT_EQ(first.layer, "s0.b0.pw2");
  EXPECT_LT(first.local_sqnr_db, 3.0);  // most of its output is lost
  for (const auto& l : after) {
    EXPECT_GE(l.score, 0) << l.layer;
    EXPECT_GT(l.weight_sqnr_db, 0) << l.layer;
  }
}

namespace {

void expect_mixed_allocation_within_every_budget(const std::string& kind) {
  const auto net = trained_tiny_net(kind);
  auto cfg = tiny_config("", kind);
  cfg.quant.calib_images = 128;
  eval::Evaluator evaluator(cfg, net, data());
  const auto arch = supernet::largest_spec(net->space(), policy(32, 32));
  const auto report = eval::measure_sensitivity(evaluator, arch, {2, 4, 8}, 8);
  ASSERT_EQ(report.passes.size(), 3u);
  EXPECT_EQ(report.passes.front().weight_bits, 2);
  for (const auto& pass : report.passes) {
    EXPECT_EQ(pass.layers.size(), arch.policy.size());  // every compressible layer, scored
    for (const auto& l : pass.layers) EXPECT_GE(l.score, 0) << l.layer;
  }
  const auto uniform = [&](int bits) {
    return double(evaluator.prepare(supernet::with_uniform_policy(arch, policy(bits, 8))).graph.model_bytes());
  };
  const double lowest = uniform(2), highest = uniform(8);
  std::map<std::string, int> previous;
  for (double f : {0.0, 0.2, 0.45, 0.7, 1.0}) {
    const double budget = lowest + f * (highest - lowest);
    const auto m = eval::allocate_mixed(report, {"model_bytes", budget});
    const double bytes = double(evaluator.prepare(m.spec).graph.model_bytes());
    EXPECT_LE(bytes, budget) << "budget fraction " << f;
    EXPECT_NEAR(bytes, m.fixed + m.allocation.cost, 1e-6);  // the allocator's cost model is the graph's
    for (const auto& [layer, p] : m.spec.policy) {
      EXPECT_EQ(p.act_bits, 8);
      if (previous.count(layer)) {
        EXPECT_GE(p.weight_bits, previous[layer]) << layer;
      }
      previous[layer] = p.weight_bits;
    }
  }
  expect_error([&] { eval::allocate_mixed(report, {"model_bytes", lowest - 1}); },
               {"below the smallest reachable", "w2"});
  expect_error([&] { eval::allocate_mixed(report, {"latency_ms", 1}); }, {"'latency_ms'", "model_bytes or bops"});
}

}  // namespace

TEST(Sensitivity, MixedAllocationKeepsTheDeployedModelBytesWithinEveryBudget) {
  expect_mixed_allocation_within_every_budget("mbv3");
}

// The same on a ViT: its linears on tokens are scored and allocated alike.
TEST(Sensitivity, MixedAllocationOnAViT) { expect_mixed_allocation_within_every_budget("vit"); }
