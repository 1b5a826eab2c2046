// Space encoding over the mbv3 space and the search section of the config.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <unordered_set>

#include "search/baselines.hpp"
#include "search/sensitivity_prior.hpp"
#include "search/space.hpp"
#include "search/tactics.hpp"
#include "src/core/config.hpp"
#include "src/core/error.hpp"
#include "src/eval/metrics.hpp"
#include "supernet/supernet.hpp"
#include "tests/search/synthetic.hpp"
#include "tests/test_util.hpp"

namespace qs = qnas::search;
namespace sn = qnas::supernet;

namespace {

// The quickstart space with one policy gene per layer (its config searches per block).
qnas::core::Config quickstart() {
  return qnas::core::load_config(std::string(QNAS_SOURCE_DIR) + "/configs/quickstart.yaml", {"quant.granularity=layer"});
}

const sn::Supernet& mbv3_net() {
  static const auto net = sn::make_supernet(quickstart(), {});
  return net;
}

const sn::SpaceDesc& mbv3_space() { return mbv3_net()->space(); }

// The quickstart space with five methods searched per layer.
const sn::Supernet& methods_net() {
  static const auto net = [] {
    auto cfg = quickstart();
    cfg.quant.methods = {"rtn", "gptq act_order=1", "smoothquant alpha=0.75", "decoupleq iterations=2",
                         "admm_cp rank_rate=1.5"};
    return sn::make_supernet(cfg, {});
  }();
  return net;
}

// SimQ-NAS's space: each layer INT8 or FP32 (one gene), two methods to
// canonicalise between.
const sn::Supernet& coupled_net() {
  static const auto net = [] {
    auto cfg = quickstart();
    cfg.quant.weight_bits = {8, 32};
    cfg.quant.couple_act_bits = true;
    cfg.quant.methods = {"rtn", "gptq act_order=1"};
    return sn::make_supernet(cfg, {});
  }();
  return net;
}

std::string error_of(const std::string& yaml) {
  try {
    qnas::core::parse_config(yaml, "test.yaml");
  } catch (const qnas::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Space, MethodChoicesEncodeAndDecode) {
  const qs::Space space(methods_net()->space());
  qnas::core::Rng rng(6);
  std::map<std::string, int> seen;
  for (int t = 0; t < 200; ++t) {
    const auto spec = sn::random_spec(space.desc(), rng);
    for (const auto& [layer, p] : spec.policy) {
      ++seen[p.method];
      EXPECT_TRUE(qnas::quant::method_applies(p.method, p.weight_bits, p.act_bits)) << layer;
      EXPECT_NO_THROW(qnas::quant::check_policy(p, layer));
    }
    const auto g = space.encode(spec);
    EXPECT_EQ(space.decode(g), spec);
    EXPECT_EQ(space.canonical(g), g);
    const auto r = space.random(rng);
    EXPECT_EQ(space.encode(space.decode(r)), r);
  }
  for (const char* m : {"rtn", "gptq", "smoothquant", "decoupleq", "admm_cp"}) EXPECT_GT(seen[m], 0) << m;
  // smoothquant on a w4a8 layer means rtn: the gene canonicalises to rtn's choice.
  auto spec = sn::largest_spec(space.desc(), qnas::testing::policy(4, 8));
  auto g = space.encode(spec);
  size_t method_gene = 0;
  while (space.desc().variables[method_gene].field != "method") ++method_gene;
  EXPECT_EQ(g[method_gene], 0);
  g[method_gene] = 2;
  EXPECT_EQ(space.decode(g), spec);
  EXPECT_EQ(space.canonical(g)[method_gene], 0);
  spec.policy.begin()->second.method = "gptq";  // gptq without act_order is not a searched choice
  qnas::testing::expect_error([&] { space.encode(spec); }, {"uses method 'gptq'", "'gptq act_order=1'", "quant.methods"});
}

TEST(Space, BadMethodChoicesAreNamed) {
  const auto error = [](std::vector<std::string> methods) {
    auto cfg = quickstart();
    cfg.quant.methods = std::move(methods);
    try {
      sn::make_supernet(cfg, {});
    } catch (const qnas::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error({"rtn", "gptq groups=8"}).find("quant.methods[1] 'gptq groups=8': method gptq has no parameter 'groups'"), std::string::npos);
  EXPECT_NE(error({"rtn", "gptq group=32"}).find("group is not searchable"), std::string::npos);
  EXPECT_NE(error({"smoothquant alpha=1.5"}).find("alpha 1.5; expected a value in [0, 1]"), std::string::npos);
  EXPECT_NE(error({"gptq", "gptq"}).find("quant.methods[1] 'gptq': listed twice"), std::string::npos);
  EXPECT_NE(error({"awq"}).find("method 'awq'; expected one of rtn, gptq, decoupleq, smoothquant"), std::string::npos);
  EXPECT_NE(error({"gptq damp"}).find("'damp' in 'gptq damp'; expected key=value"), std::string::npos);
  EXPECT_NE(error({"gptq damp=x"}).find("damp=x; expected a number"), std::string::npos);
}

TEST(Space, KeptLayersStayAtEightBitRtnInEverySubnet) {
  auto cfg = quickstart();
  cfg.quant.methods = {"rtn", "admm_cp rank_rate=1.5"};
  cfg.quant.keep_8bit = {"stem", "classifier"};
  const auto net = sn::make_supernet(cfg, {});
  const qs::Space space(net->space());
  qnas::core::Rng rng(7);
  std::set<int> other_bits;
  for (int t = 0; t < 100; ++t) {
    const auto spec = space.decode(space.random(rng));
    for (const char* kept : {"stem", "classifier"}) {
      EXPECT_EQ(spec.policy.at(kept).weight_bits, 8) << kept;
      EXPECT_EQ(spec.policy.at(kept).method, "rtn") << kept;
    }
    other_bits.insert(spec.policy.at("head.mix").weight_bits);
  }
  EXPECT_EQ(other_bits.size(), cfg.quant.weight_bits.size());  // the rest is still searched
  for (const auto& v : space.desc().variables) {
    if (v.layer == "stem") {
      EXPECT_NE(v.field, "method");
    }
  }

  cfg.quant.keep_8bit = {"stem", "clasifier"};
  qnas::testing::expect_error([&] { sn::make_supernet(cfg, {}); },
                              {"quant.keep_8bit[1] 'clasifier'", "no such layer", "stem, classifier"});
  cfg.quant.keep_8bit = {"stem", "stem"};
  qnas::testing::expect_error([&] { sn::make_supernet(cfg, {}); }, {"quant.keep_8bit[1] 'stem'", "listed twice"});
}

TEST(Space, InactiveGenesAreCanonicalised) {
  const auto space = qs::testing::synthetic_space(4, 3, /*conditional_from=*/2);
  // v0 = 0 switches v2 and v3 off: their genes do not matter.
  const qs::Genome a = {0, 1, 2, 1}, b = {0, 1, 0, 0};
  EXPECT_EQ(space.decode(a), space.decode(b));
  EXPECT_EQ(space.canonical(a), b);
  EXPECT_EQ(space.encode(space.decode(a)), b);
  EXPECT_EQ(space.masked(a), (qnas::predictors::Genome{0, 1, qnas::predictors::kInactive, qnas::predictors::kInactive}));
  EXPECT_FALSE(space.decode({1, 1, 2, 1}) == space.decode({1, 1, 0, 0}));
  EXPECT_THROW(space.decode({0, 3, 0, 0}), qnas::Error);
  EXPECT_THROW(space.decode({0, 1, 0}), qnas::Error);
}

TEST(Space, RefusesSpecsOutsideTheSearchedChoices) {
  const qs::Space space(mbv3_space());
  auto spec = sn::largest_spec(space.desc());
  spec.policy.begin()->second.weight_bits = 2;  // legal, but not among quant.weight_bits {4, 8, 32}
  EXPECT_THROW(space.encode(spec), qnas::Error);
  spec = sn::largest_spec(space.desc());
  spec.policy.begin()->second.method = "gptq";
  EXPECT_THROW(space.encode(spec), qnas::Error);
}

TEST(Space, ShapeProxiesEqualTheCostsOfTheDecodedSubnet) {
  for (const auto* net : {&mbv3_net(), &methods_net(), &coupled_net()}) {
  const qs::Space space((*net)->space());
  const auto proxies = qs::shape_proxies(space, **net);
  qnas::core::Rng rng(8);
  auto g = space.random(rng);
  for (int t = 0; t < 300; ++t) {
    // Every third genome keeps the architecture and redraws the policy genes,
    // so cached shapes are reused with other bits.
    if (t % 3 == 0) g = space.random(rng);
    else
      for (size_t i = 0; i < g.size(); ++i)
        if (space.desc().variables[i].is_policy()) g[i] = int(qnas::core::uniform_index(rng, space.cardinalities()[i]));
    g = space.canonical(g);
    const auto expected = qnas::eval::cost_metrics((*net)->layer_infos(space.decode(g)));
    EXPECT_EQ(proxies(g), qs::MetricValues(expected)) << qs::genome_key(g);
  }
  }
}

namespace {

// A prior in which the stem is a thousand times more sensitive than any other layer.
qs::SensitivityPrior stem_heavy_prior(const qs::Space& space) {
  qs::SensitivityPrior prior;
  for (const auto& layer : space.desc().layers)
    for (int bits : {4, 8}) prior.score[layer][bits] = (layer == "stem" ? 1000.0 : 1.0) * std::pow(4.0, -bits);
  return prior;
}

}  // namespace

TEST(Space, SensitivitySeedsKeepTheSensitiveLayerWidestAndAddTheProxy) {
  const qs::Space space(mbv3_space());
  const auto prior = stem_heavy_prior(space);
  const auto seeds = qs::sensitivity_seeds(space, *mbv3_net(), prior);
  qnas::core::Rng rng(3);
  std::unordered_set<std::string> exclude;
  const auto genomes = seeds(40, rng, exclude);
  ASSERT_EQ(genomes.size(), 40u);
  EXPECT_EQ(exclude.size(), 40u);
  std::set<int> stem_bits, other_bits;
  for (const auto& g : genomes) {
    EXPECT_EQ(space.canonical(g), g);
    const auto spec = space.decode(g);
    const int stem = spec.policy.at("stem").weight_bits;
    stem_bits.insert(stem);
    for (const auto& [layer, p] : spec.policy) {
      EXPECT_LE(p.weight_bits, stem) << layer;  // narrowed only after every other layer is at its narrowest
      if (layer != "stem") other_bits.insert(p.weight_bits);
    }
  }
  EXPECT_EQ(other_bits, (std::set<int>{4, 8, 32}));  // budgets drawn across the whole range
  // The proxy: the prior's score summed over the layers at their bits.
  const auto proxies = qs::shape_proxies(space, *mbv3_net(), prior);
  const auto& g = genomes.front();
  double expected = 0;
  for (const auto& [layer, p] : space.decode(g).policy) expected += prior.at(layer, p.weight_bits);
  EXPECT_NEAR(proxies(g).at("sensitivity"), expected, 1e-12 * expected);
  qnas::testing::expect_error([&] { prior.at("stem", 2); }, {"'stem' was not measured at 2 bits"});
}

TEST(Space, InitialPopulationTakesItsSeededFractionFromThePrior) {
  const qs::Space space(mbv3_space());
  qnas::core::SearchConfig cfg;
  cfg.tactic = "nsga2";
  cfg.population = 10;
  cfg.seed_from_sensitivity = 0.3;
  cfg.baselines = false;  // the seeded part alone
  std::vector<qs::Genome> seeded;
  const qs::SeedFn seeds = [&](size_t n, qnas::core::Rng& rng, std::unordered_set<std::string>& exclude) {
    std::vector<qs::Genome> out;
    while (out.size() < n) {
      auto g = space.random(rng);
      if (exclude.insert(qs::genome_key(g)).second) out.push_back(g);
    }
    seeded.insert(seeded.end(), out.begin(), out.end());
    return out;
  };
  const auto tactic = qs::make_tactic({space, qs::Goals::from_config(cfg), cfg, {}, {}, seeds, {}});
  qnas::core::Rng rng(1);
  const auto first = tactic->propose(0, {}, 10, rng);
  ASSERT_EQ(first.size(), 10u);
  ASSERT_EQ(seeded.size(), 3u);
  EXPECT_TRUE(std::equal(seeded.begin(), seeded.end(), first.begin()));
  cfg.seed_from_sensitivity = 0.5;
  qnas::testing::expect_error(
      [&] { qs::make_tactic({space, qs::Goals::from_config(cfg), cfg, {}, {}, {}, {}})->propose(0, {}, 10, rng); },
      {"seed_from_sensitivity 0.5", "no sensitivity prior"});
}

TEST(SearchConfig, BadValuesAreNamed) {
  EXPECT_NE(error_of("search: {objectives: {top5: max}}").find("search.objectives.top5"), std::string::npos);
  EXPECT_NE(error_of("search: {objectives: {top1: up}}").find("expected one of {max, min}"), std::string::npos);
  EXPECT_NE(error_of("search: {constraints: {latency_ms: \"< 3\"}}").find("search.constraints.latency_ms"),
            std::string::npos);
  EXPECT_NE(error_of("search: {constraints: {latency_ms: \"<= fast\"}}").find("expected a comparison"),
            std::string::npos);
  EXPECT_NE(error_of("search: {population: 1}").find("search.population"), std::string::npos);
  EXPECT_NE(error_of("search: {population: 50, evaluations: 20}").find("less than search.population"),
            std::string::npos);
  EXPECT_NE(error_of("search: {population: 20, linas_batch: 25}").find("search.linas_batch: 25 is more than"),
            std::string::npos);
  EXPECT_EQ(error_of("search: {population: 20, linas_batch: 20}"), "");
  EXPECT_NE(error_of("search: {linas_initial: 3}").find("search.linas_initial: 3 is fewer than search.folds 5"),
            std::string::npos);
  EXPECT_NE(error_of("search: {evaluations: 250, linas_initial: 300}").find("is more than search.evaluations 250"),
            std::string::npos);
  EXPECT_EQ(error_of("search: {population: 50, linas_initial: 20}"), "");
  EXPECT_NE(error_of("search: {tactic: ga}").find("ga optimises one objective"), std::string::npos);
  EXPECT_NE(error_of("search: {tactik: ga}").find("did you mean 'search.tactic'"), std::string::npos);
  EXPECT_NE(error_of("search: {objectives: {}}").find("at least one"), std::string::npos);
  EXPECT_NE(error_of("search: {reference_point: [1, 2]}").find("one per objective"), std::string::npos);
  EXPECT_NE(error_of("search: {seed_from_sensitivity: 1.5}").find("search.seed_from_sensitivity"), std::string::npos);
  EXPECT_NE(error_of("search: {proxy_features: [sensitivty]}").find("search.proxy_features"), std::string::npos);
  EXPECT_EQ(error_of("search: {proxy_features: [sensitivity, macs], seed_from_sensitivity: 0.25}"), "");
}

TEST(SearchConfig, ObjectivesReplaceTheDefaultInOrder) {
  const auto c = qnas::core::parse_config("search: {objectives: {model_bytes: min, top1: max}}", "t.yaml");
  ASSERT_EQ(c.search.objectives.size(), 2u);
  EXPECT_EQ(c.search.objectives[0].first, "model_bytes");
  EXPECT_EQ(c.search.objectives[1].second, "max");
  const auto d = qnas::core::parse_config("seed: 1", "t.yaml");
  EXPECT_EQ(d.search.objectives.size(), 3u);
  // The resolved YAML reads back to the same section.
  const auto again = qnas::core::parse_config(qnas::core::to_yaml(c), "resolved.yaml");
  EXPECT_EQ(again.search.objectives, c.search.objectives);
}

namespace {

sn::Supernet net_with(const std::string& granularity, std::vector<std::string> kept = {}) {
  auto cfg = quickstart();
  cfg.quant.granularity = granularity;
  cfg.quant.keep_8bit = std::move(kept);
  cfg.quant.methods = {"rtn", "gptq act_order=1"};
  return sn::make_supernet(cfg, {});
}

// The policy genes of each group: every active layer of a group has one policy.
void expect_uniform_groups(const sn::SpaceDesc& d, const sn::SubnetSpec& spec) {
  for (const auto& v : d.variables) {
    if (!v.is_policy()) continue;
    const qnas::quant::LayerPolicy* first = nullptr;
    for (const auto& layer : v.layers) {
      const auto it = spec.policy.find(layer);
      if (it == spec.policy.end()) continue;
      if (!first) first = &it->second;
      EXPECT_EQ(it->second, *first) << v.layer << " / " << layer;
    }
  }
}

}  // namespace

TEST(Granularity, BlockAndStageGenesEncodeDecodeAndCanonicalise) {
  const auto layer = net_with("layer"), block = net_with("block"), stage = net_with("stage");
  const auto policy_genes = [](const sn::SpaceDesc& d) {
    int n = 0;
    for (const auto& v : d.variables) n += v.is_policy();
    return n;
  };
  // quickstart: 30 layers; blocks: stem, 6 blocks, head, classifier; stages: stem, 3 stages, head, classifier.
  EXPECT_EQ(policy_genes(layer->space()), 30 * 3);
  EXPECT_EQ(policy_genes(block->space()), 9 * 3);
  EXPECT_EQ(policy_genes(stage->space()), 6 * 3);
  EXPECT_EQ(block->space().find("s1.b1.weight_bits")->active_var, "s1.depth");
  EXPECT_TRUE(stage->space().find("s1.act_bits")->active_var.empty());
  EXPECT_EQ(block->space().find("head.method")->layers, (std::vector<std::string>{"head.expand", "head.mix"}));
  EXPECT_LT(block->space().log10_size(), layer->space().log10_size());
  for (const auto* net : {&block, &stage}) {
    const qs::Space space((*net)->space());
    qnas::core::Rng rng(8);
    for (int t = 0; t < 200; ++t) {
      const auto r = space.random(rng);
      const auto spec = space.decode(r);
      expect_uniform_groups(space.desc(), spec);
      EXPECT_NO_THROW(sn::validate_spec(space.desc(), spec, "test"));
      EXPECT_EQ(space.encode(spec), r);
      EXPECT_EQ(space.canonical(r), r);
      const auto s2 = sn::random_spec(space.desc(), rng);
      EXPECT_EQ(space.decode(space.encode(s2)), s2);
    }
  }
}

TEST(Granularity, ALayerSpecLoadsInABlockSpaceOnlyWhenUniformPerBlock) {
  const qs::Space layers(net_with("layer")->space()), blocks(net_with("block")->space());
  // Written at layer granularity, uniform within each block: loads.
  const auto uniform = sn::largest_spec(layers.desc(), qnas::testing::policy(4, 8));
  EXPECT_EQ(blocks.decode(blocks.encode(uniform)), uniform);
  auto mixed = uniform;
  mixed.policy.at("s1.b0.dw").weight_bits = 8;
  EXPECT_NO_THROW(layers.encode(mixed));
  qnas::testing::expect_error([&] { blocks.encode(mixed); },
                              {"'s1.b0.pw1' and 's1.b0.dw' differ in weight_bits", "'s1.b0' one weight_bits gene",
                               "quant.granularity"});
}

TEST(Granularity, KeptLayersAreGroupsOfTheirOwn) {
  const qs::Space space(net_with("block", {"s0.b0.dw", "classifier"})->space());
  const auto* kept = space.desc().find("s0.b0.dw.weight_bits");
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->choices, std::vector<int>{8});
  EXPECT_EQ(space.desc().find("s0.b0.dw.method"), nullptr);
  EXPECT_EQ(space.desc().find("s0.b0.weight_bits")->layers, (std::vector<std::string>{"s0.b0.pw1", "s0.b0.pw2"}));
  qnas::core::Rng rng(2);
  for (int t = 0; t < 50; ++t) EXPECT_EQ(space.decode(space.random(rng)).policy.at("s0.b0.dw").weight_bits, 8);
}

TEST(Granularity, BadValueIsNamed) {
  EXPECT_NE(error_of("quant: {granularity: blocks}").find("quant.granularity"), std::string::npos);
}

TEST(Granularity, SensitivitySeedingNeedsLayerGenes) {
  const auto net = net_with("block");
  const qs::Space space(net->space());
  qnas::testing::expect_error([&] { qs::sensitivity_seeds(space, *net, {}); },
                              {"seed_from_sensitivity", "'s0.b0' one gene for 3 layers", "quant.granularity: layer"});
}

TEST(CoupledBits, EachLayerRunsInt8OrFp32AndRoundTrips) {
  const qs::Space space(coupled_net()->space());
  for (const auto& v : space.desc().variables) EXPECT_NE(v.field, "act_bits") << v.name;
  qnas::core::Rng rng(5);
  std::set<std::string> seen;
  for (int t = 0; t < 200; ++t) {
    const auto g = space.random(rng);
    const auto spec = space.decode(g);
    for (const auto& [layer, p] : spec.policy) {
      EXPECT_EQ(p.act_bits, p.weight_bits == 32 ? 32 : 8) << layer;
      seen.insert(p.method + std::to_string(p.weight_bits));
    }
    EXPECT_EQ(space.encode(spec), g);
    const auto s2 = sn::with_random_policy(space.desc(), spec, rng);
    EXPECT_EQ(space.decode(space.encode(s2)), s2);
  }
  // gptq at W8, rtn at both (gptq does not take fp32 weights).
  EXPECT_EQ(seen, (std::set<std::string>{"rtn8", "rtn32", "gptq8"}));
  EXPECT_EQ(qs::uniform_policies(space).size(), 2u);  // int8 and fp32; no w4a8 in this space
}

TEST(CoupledBits, ASpecWithOtherActivationBitsIsRefused) {
  const qs::Space space(coupled_net()->space());
  auto spec = sn::largest_spec(space.desc(), qnas::testing::policy(8, 8));
  EXPECT_NO_THROW(space.encode(spec));
  spec.policy.at("s1.b0.dw").act_bits = 32;
  qnas::testing::expect_error([&] { space.encode(spec); },
                              {"s1.b0.dw runs w8a32", "quant.couple_act_bits", "expected w8a8"});
}

TEST(CoupledBits, ActBitsMustListWhatTheWeightsGive) {
  EXPECT_EQ(error_of("quant: {weight_bits: [8, 32], couple_act_bits: true}"), "");
  qnas::testing::expect_error(
      [] { qnas::core::parse_config("quant: {weight_bits: [4, 8], couple_act_bits: true}", "t.yaml"); },
      {"quant.act_bits", "couple_act_bits", "[8]"});
  qnas::testing::expect_error(
      [] { qnas::core::parse_config("quant: {weight_bits: [8, 32], act_bits: [8], couple_act_bits: true}", "t.yaml"); },
      {"quant.act_bits", "[8, 32]"});
}
