// The space and SubnetSpec: sizes, extremes, validation, JSON.
#include <gtest/gtest.h>

#include <torch/utils.h>

#include <cmath>
#include <set>

#include "supernet/supernet.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_error;
using qnas::testing::tiny_net;

TEST(Space, VariablesAndSizeByHand) {
  auto net = tiny_net();
  const auto& space = net->space();
  // 2 stages x (depth + 2 blocks x (kernel, expand)) arch variables.
  int arch = 0, policy = 0;
  for (const auto& v : space.variables) (v.is_policy() ? policy : arch)++;
  EXPECT_EQ(arch, 2 * (1 + 2 * 2));
  // Layers: stem + stage 0: 2 blocks x 3 units + stage 1 (SE): 2 blocks x 5 units
  // (pw1, dw, se_reduce, se_expand, pw2) + head.expand, head.mix, classifier = 20.
  EXPECT_EQ(space.layers.size(), 20u);
  EXPECT_EQ(space.layers[1 + 6 + 2], "s1.b0.se_reduce");
  EXPECT_EQ(policy, 2 * 20);
  // Per stage: block 0 always (2 kernels x 2 expands x units x (3 w x 2 a) policies),
  // block 1 only at depth 2: count = block * (1 + block); the 4 fixed layers add 6^4.
  const double block0 = 2 * 2 * std::pow(6.0, 3), block1 = 2 * 2 * std::pow(6.0, 5);
  const double expected = std::log10(block0 * (1 + block0)) + std::log10(block1 * (1 + block1)) + 4 * std::log10(6.0);
  EXPECT_NEAR(space.log10_size(), expected, 1e-9);
  const auto* v = space.find("s1.b1.kernel");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->active_var, "s1.depth");
  EXPECT_EQ(v->active_min, 2);
  EXPECT_EQ(space.find("s1.b0.kernel")->active_var, "");
}

TEST(Space, LargestAndSmallest) {
  auto net = tiny_net();
  const auto big = supernet::largest_spec(net->space());
  const auto small = supernet::smallest_spec(net->space());
  EXPECT_EQ(big.arch.at("s0.depth"), 2);
  EXPECT_EQ(big.arch.at("s0.b1.kernel"), 5);
  EXPECT_EQ(big.arch.at("s1.b1.expand"), 3);
  EXPECT_EQ(small.arch.at("s0.depth"), 1);
  EXPECT_EQ(small.arch.count("s0.b1.kernel"), 0u);  // removed by depth: no value
  EXPECT_EQ(small.policy.count("s0.b1.dw"), 0u);    // and no policy
  EXPECT_EQ(big.policy.size(), 20u);
  EXPECT_EQ(small.policy.size(), 12u);
  EXPECT_EQ(big.policy.at("stem").weight_bits, 32);
  supernet::validate_spec(net->space(), big, "t");
  supernet::validate_spec(net->space(), small, "t");
}

TEST(Space, RandomSpecsAreValidAndReachEveryChoice) {
  auto net = tiny_net();
  core::Rng rng(3);
  std::map<std::string, std::set<int>> seen;
  for (int i = 0; i < 400; ++i) {
    const auto spec = supernet::random_spec(net->space(), rng);
    supernet::validate_spec(net->space(), spec, "random");
    for (const auto& [k, v] : spec.arch) seen[k].insert(v);
    for (const auto& [layer, p] : spec.policy) {
      seen[layer + ".weight_bits"].insert(p.weight_bits);
      seen[layer + ".act_bits"].insert(p.act_bits);
    }
  }
  for (const auto& v : net->space().variables)
    EXPECT_EQ(seen[v.name], std::set<int>(v.choices.begin(), v.choices.end())) << v.name;
}

TEST(Space, ChoicesOutsideTheSpaceAreRefused) {
  auto net = tiny_net();
  const auto& space = net->space();
  auto spec = supernet::largest_spec(space);
  spec.arch["s0.b0.kernel"] = 7;
  expect_error([&] { supernet::validate_spec(space, spec, "spec.json"); },
               {"spec.json", "s0.b0.kernel = 7; expected one of [3,5]"});
  spec = supernet::largest_spec(space);
  spec.arch["s0.b9.kernel"] = 3;
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"unknown architecture variable 's0.b9.kernel'"});
  spec = supernet::smallest_spec(space);
  spec.arch["s0.b1.kernel"] = 3;
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"'s0.b1.kernel' is set, but s0.depth < 2"});
  spec = supernet::largest_spec(space);
  spec.arch.erase("s1.b0.expand");
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"missing architecture variable 's1.b0.expand'"});
  spec = supernet::largest_spec(space);
  spec.policy["stem"].weight_bits = 5;
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"policy of 'stem'", "weight_bits 5"});
  spec = supernet::smallest_spec(space);
  spec.policy["s0.b1.dw"] = {};
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"policy for 's0.b1.dw'", "not an active"});
  spec = supernet::largest_spec(space);
  spec.policy.erase("classifier");
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"missing policy for active layer 'classifier'"});
  spec = supernet::largest_spec(space);
  spec.supernet = "resnet";
  expect_error([&] { supernet::validate_spec(space, spec, "s"); }, {"supernet 'resnet'; expected 'mbv3'"});
  // The supernet's own forward validates too.
  spec = supernet::largest_spec(space);
  spec.arch["s1.depth"] = 3;
  expect_error([&] { net->forward(at::zeros({1, 1, 28, 28}), spec); }, {"s1.depth = 3"});
}

TEST(Space, SpecJsonRoundTrip) {
  auto net = tiny_net();
  core::Rng rng(11);
  for (int i = 0; i < 20; ++i) {
    const auto spec = supernet::random_spec(net->space(), rng);
    const auto j = supernet::to_json(spec);
    EXPECT_EQ(supernet::spec_from_json(nlohmann::json::parse(j.dump()), "j"), spec);
  }
  expect_error([] { supernet::spec_from_json({{"supernet", "mbv3"}, {"arhc", {}}}, "f.json"); },
               {"f.json: unknown key 'arhc'"});
  expect_error([] { supernet::load_spec("/no/spec.json"); }, {"subnet spec file '/no/spec.json'"});
}

TEST(Space, StructureDiffNamesWhatDiffers) {
  auto a = tiny_net();
  auto cfg = qnas::testing::tiny_config();
  cfg.supernet.mbv3.kernel = {3, 5, 7};
  cfg.supernet.mbv3.stages[1].width = 32;
  auto b = tiny_net(cfg);
  const auto diff = supernet::structure_diff(a->space().structure, b->space().structure);
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_EQ(diff[0], "supernet.kernel: checkpoint [3,5], config [3,5,7]");
  EXPECT_EQ(diff[1], "supernet.stages.1.width: checkpoint 24, config 32");
  EXPECT_NE(a->space().structure_hash(), b->space().structure_hash());
  // Quantization choices do not change the weights: same structure.
  cfg = qnas::testing::tiny_config();
  cfg.quant.weight_bits = {2, 8};
  EXPECT_EQ(tiny_net(cfg)->space().structure_hash(), a->space().structure_hash());
}
