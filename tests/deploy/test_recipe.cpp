// The int8 recipe search: dynamic activation quantization (linear layers)
// runs on int8 kernels like its simulation; the chosen recipe respects the
// accuracy bound and is the fastest that does; a recipe that cannot run is
// a row with its reason.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <set>

#include "src/deploy/export.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/eval/recipe.hpp"
#include "tests/deploy/deploy_fixture.hpp"

using namespace qnas;
using namespace qnas::testing;

TEST(Recipe, DynamicLinearLayersRunOnInt8KernelsLikeTheSimulation) {
  auto net = trained_tiny_net();
  const auto arch = supernet::largest_spec(net->space());
  const auto spec = eval::recipe_spec(arch, {"dynamic", "channel", "-", -1}, net->layer_infos(arch));
  auto d = deploy_spec(net, spec);
  int dynamic = 0;
  for (const auto& n : d.graph.nodes) {
    if (!n.has_weight()) continue;
    EXPECT_EQ(n.dynamic, n.kind == deploy::OpKind::kLinear) << n.name;
    EXPECT_FALSE(n.int8) << n.name;
    dynamic += n.dynamic;
  }
  EXPECT_GT(dynamic, 0);
  c10::InferenceMode guard;
  const auto x = batch(data().test, 128);
  const auto sim = deploy::simulate(d.graph, x);
  const auto int8 = deploy::Int8Model(d.graph).forward(x);
  EXPECT_LT(((sim - int8).abs().max() / sim.abs().max()).item<double>(), 0.02);
  EXPECT_GT(sim.argmax(1).eq(int8.argmax(1)).to(at::kDouble).mean().item<double>(), 0.98);
  // On a conv layer LibTorch 1.13's ONEDNN dynamic kernel is wrong: refused.
  auto conv_dynamic = spec;
  conv_dynamic.policy.at("stem") = {8, 8, "rtn", {{"dynamic", 1}}};
  expect_error([&] { deploy_spec(net, conv_dynamic); }, {"'stem' is a conv", "linear layers only"});
}

TEST(Recipe, TheChosenRecipeIsTheFastestWithinTheBoundAndFailuresAreRows) {
  auto net = trained_tiny_net();
  const auto arch = supernet::largest_spec(net->space());
  eval::RecipeGrid grid{{"static", "dynamic"}, {"channel", "tensor"}, {"minmax"}, {-1, 0.5}};
  eval::RecipeOptions o;
  o.max_top1_drop = 2.0;
  o.max_images = 256;
  const auto s = eval::search_recipes(tiny_config(), net, data(), arch, grid, o);
  ASSERT_EQ(s.rows.size(), 8u);  // static: 2 weights x 2 alphas; dynamic the same (observer "-")
  int failed = 0;  // dynamic + SmoothQuant; a static SmoothQuant recipe fails only when no division folds
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const auto& r = s.rows[i];
    if (!r.ok) {
      EXPECT_GE(r.recipe.alpha, 0);
      if (r.recipe.acts == "dynamic") {
        ++failed;
        EXPECT_NE(r.reason.find("SmoothQuant"), std::string::npos) << r.reason;
      } else {
        EXPECT_NE(r.reason.find("no layer's SmoothQuant division folds"), std::string::npos) << r.reason;
      }
      continue;
    }
    EXPECT_GT(r.latency_ms, 0);
    EXPECT_EQ(r.within_bound, r.top1 >= s.fp32.top1 - o.max_top1_drop);
    if (s.winner >= 0 && r.within_bound) {
      EXPECT_LE(s.rows[size_t(s.winner)].latency_ms, r.latency_ms);
    }
  }
  EXPECT_EQ(failed, 2);
  ASSERT_GE(s.winner, 0);
  const auto& w = s.rows[size_t(s.winner)];
  EXPECT_GE(w.top1, s.fp32.top1 - o.max_top1_drop);
  EXPECT_GT(w.memory_reduction, 0);
  expect_error([&] { eval::check_grid({{"static"}, {"row"}, {"minmax"}, {-1}}); }, {"--weights", "'row'", "channel, tensor"});
}

// The recipes share one BN-recalibrated, folded subnet: a recipe evaluated on
// it measures what a fresh preparation of its spec measures.
TEST(Recipe, ASharedFoldedSubnetEvaluatesLikeAFreshOne) {
  auto net = trained_tiny_net();
  const auto arch = supernet::largest_spec(net->space());
  const eval::Evaluator evaluator(tiny_config(), net, data());
  const auto folded = evaluator.prepare(supernet::with_uniform_policy(arch, {})).subnet;
  eval::EvalOptions o;
  o.max_images = 256;
  for (const eval::Recipe& recipe : {eval::Recipe{"static", "channel", "minmax", 0.5},
                                     eval::Recipe{"static", "tensor", "minmax", -1}}) {
    const auto spec = eval::recipe_spec(arch, recipe, net->layer_infos(arch));
    const auto fresh = evaluator.evaluate(spec, "val", o), shared = evaluator.evaluate(folded, spec, "val", o);
    EXPECT_EQ(shared.metrics.at("top1"), fresh.metrics.at("top1")) << recipe.label();
    EXPECT_EQ(shared.metrics.at("model_bytes"), fresh.metrics.at("model_bytes")) << recipe.label();
    EXPECT_EQ(shared.layers.size(), fresh.layers.size());
    EXPECT_FALSE(shared.phase_s.count("bn_recal"));
  }
  const auto other = supernet::smallest_spec(net->space());
  ASSERT_NE(other.arch, arch.arch);
  expect_error([&] { evaluator.evaluate(folded, other, "val", o); }, {"another architecture"});
}

// SmoothQuant's recipes smooth where the division folds (qkv and fc1 into
// their LayerNorm, proj into V's rows of qkv, the classifier into the final
// LayerNorm), so a smoothed ViT has no fp32 scale node; per-tensor weights
// keep qkv's grid, so proj stays plain there.
TEST(Recipe, SmoothQuantGoesWhereItsDivisionFolds) {
  auto net = trained_tiny_net("vit");
  const auto arch = supernet::largest_spec(net->space());
  const eval::Evaluator evaluator(tiny_config("", "vit"), net, data());
  const auto folded = evaluator.prepare(supernet::with_uniform_policy(arch, {})).subnet;
  const auto layers = net->layer_infos(arch);
  // The compressible layers named `suffixes` ("classifier" or "<block>.qkv"...).
  const auto placement = [&](const std::vector<std::string>& suffixes) {
    std::set<std::string> out;
    for (const auto& l : layers)
      for (const auto& suffix : suffixes) {
        const auto dot = l.name.rfind('.');
        if (l.compressible && l.name.substr(dot == std::string::npos ? 0 : dot + 1) == suffix) out.insert(l.name);
      }
    return out;
  };
  for (const std::string weights : {"channel", "tensor"}) {
    const eval::Recipe plain{"static", weights, "minmax", -1}, smooth{"static", weights, "minmax", 0.5};
    const auto smoothed = eval::foldable_smoothing_layers(folded, eval::recipe_spec(arch, plain, layers).policy);
    const auto expected = weights == "channel" ? placement({"qkv", "proj", "fc1", "classifier"})
                                               : placement({"qkv", "fc1", "classifier"});
    EXPECT_EQ(smoothed, expected) << weights;
    const auto spec = eval::recipe_spec(arch, smooth, layers, &smoothed);
    int smoothquant = 0;
    for (const auto& [layer, p] : spec.policy) smoothquant += p.method == "smoothquant";
    EXPECT_EQ(smoothquant, int(expected.size()));
    const auto p = evaluator.prepare(folded, spec);
    for (const auto& n : p.graph.nodes) EXPECT_NE(n.kind, deploy::OpKind::kScale) << n.name;
  }
}
