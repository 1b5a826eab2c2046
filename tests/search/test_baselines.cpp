// Uniform baselines in the initial population, kept by a resumed search, and
// compared with the rows (baselines.csv, hypervolume.csv).
#include <gtest/gtest.h>

#include <unistd.h>

#include <functional>
#include <set>

#include "search/baselines.hpp"
#include "search/runner.hpp"
#include "search/tactics.hpp"
#include "src/core/config.hpp"
#include "supernet/supernet.hpp"
#include "tests/search/synthetic.hpp"
#include "tests/test_util.hpp"

namespace qs = qnas::search;
namespace sn = qnas::supernet;

namespace {

sn::Supernet quickstart_net(const std::function<void(qnas::core::Config&)>& edit = {}) {
  auto cfg = qnas::core::load_config(std::string(QNAS_SOURCE_DIR) + "/configs/quickstart.yaml");
  if (edit) edit(cfg);
  return sn::make_supernet(cfg, {});
}

qnas::core::SearchConfig search_config(const std::string& tactic) {
  qnas::core::SearchConfig c;
  c.tactic = tactic;
  c.objectives = {{"top1", "max"}, {"model_bytes", "min"}};
  c.population = 20;
  c.evaluations = 40;
  c.inner_evaluations = 2000;
  c.predictor = "ridge";
  c.baseline_fraction = 0.25;
  return c;
}

std::vector<qs::Genome> initial_population(const qs::Space& space, const qnas::core::SearchConfig& cfg) {
  const qs::TacticContext ctx{space, qs::Goals::from_config(cfg), cfg, {}, {}, {}, {}};
  qnas::core::Rng rng(1);
  return qs::make_tactic(ctx)->propose(0, {}, size_t(cfg.population), rng);
}

// Accuracy rises with bits, size with bits and blocks: enough for a front.
qs::MetricValues synthetic_metrics(const sn::SubnetSpec& spec) {
  double bits = 0, size = 0;
  for (const auto& [layer, p] : spec.policy) bits += p.weight_bits + p.act_bits / 4.0, size += p.weight_bits * 100.0;
  for (const auto& [name, v] : spec.arch) size += 10.0 * v;
  return {{"top1", 70 + bits / 40.0 + double(spec.policy.size()) / 4.0}, {"model_bytes", size}};
}

}  // namespace

TEST(Baselines, InitialPopulationHoldsTheUniformPoliciesOfLargestSmallestAndRandom) {
  const auto net = quickstart_net();
  const qs::Space space(net->space());
  for (const std::string tactic : {"random", "nsga2", "linas"}) {
    const auto pop = initial_population(space, search_config(tactic));
    ASSERT_EQ(pop.size(), 20u) << tactic;
    std::vector<std::string> labels;
    for (const auto& g : pop) labels.push_back(qs::baseline_label(space, g));
    const std::vector<std::string> fixed = {"int8 largest",  "w4a8 largest",  "fp32 largest",
                                            "int8 smallest", "w4a8 smallest", "fp32 smallest"};
    for (size_t i = 0; i < fixed.size(); ++i) EXPECT_EQ(labels[i], fixed[i]) << tactic;
    // 25% of 20: five random architectures, the policies in turn.
    for (size_t i = 6; i < 11; ++i) EXPECT_EQ(labels[i], std::string(i % 3 == 0 ? "int8" : i % 3 == 1 ? "w4a8" : "fp32") + " random");
    for (size_t i = 11; i < pop.size(); ++i) EXPECT_EQ(labels[i], "") << i;  // random policies are not uniform
    EXPECT_EQ(space.decode(pop[0]), sn::largest_spec(space.desc(), qnas::testing::policy(8, 8)));
    EXPECT_EQ(space.decode(pop[5]), sn::smallest_spec(space.desc(), qnas::testing::policy(32, 32)));
    std::set<std::string> keys;
    for (const auto& g : pop) keys.insert(qs::genome_key(g));
    EXPECT_EQ(keys.size(), pop.size());
  }
  auto off = search_config("random");
  off.baselines = false;
  for (const auto& g : initial_population(space, off)) EXPECT_EQ(qs::baseline_label(space, g), "");
}

TEST(Baselines, ASmallerLinasInitialPopulationStillOpensWithThem) {
  const auto net = quickstart_net();
  const qs::Space space(net->space());
  auto cfg = search_config("linas");
  cfg.linas_initial = 12;  // 6 uniform, 25% of 12 random architectures, 3 random
  const auto pop = initial_population(space, cfg);
  ASSERT_EQ(pop.size(), 12u);
  const auto whole = initial_population(space, search_config("linas"));
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(qs::genome_key(pop[i]), qs::genome_key(whole[i])) << i;
  for (size_t i = 6; i < 9; ++i) EXPECT_NE(qs::baseline_label(space, pop[i]).find(" random"), std::string::npos) << i;
  for (size_t i = 9; i < 12; ++i) EXPECT_EQ(qs::baseline_label(space, pop[i]), "") << i;
}

TEST(Baselines, OnlyThePoliciesTheSpaceHolds) {
  // No 4-bit weights: no w4a8 baseline. Kept layers stay at W8 in the fp32 baseline.
  const auto net = quickstart_net([](qnas::core::Config& c) {
    c.quant.weight_bits = {8, 32};
    c.quant.keep_8bit = {"stem", "classifier"};
  });
  const qs::Space space(net->space());
  const auto policies = qs::uniform_policies(space);
  ASSERT_EQ(policies.size(), 2u);
  EXPECT_EQ(policies[0].name, "int8");
  EXPECT_EQ(policies[1].name, "fp32");
  const auto pop = initial_population(space, search_config("random"));
  const auto fp32 = space.decode(pop[1]);
  EXPECT_EQ(qs::baseline_label(space, pop[1]), "fp32 largest");
  EXPECT_EQ(fp32.policy.at("stem").weight_bits, 8);
  EXPECT_EQ(fp32.policy.at("stem").act_bits, 32);
  EXPECT_EQ(fp32.policy.at("head.mix").weight_bits, 32);
  // A space without plain rtn at 8 and 4 bits holds no int8 or w4a8 baseline.
  const auto gptq = quickstart_net([](qnas::core::Config& c) { c.quant.methods = {"gptq", "decoupleq"}; });
  const auto only = qs::uniform_policies(qs::Space(gptq->space()));
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].name, "fp32");
}

TEST(Baselines, ComparisonCountsDominatingRowsAndRatiosAtNoLoss) {
  const auto net = quickstart_net();
  const qs::Space space(net->space());
  const auto goals = qs::Goals::from_config(search_config("random"));
  const auto base = space.encode(sn::largest_spec(space.desc(), qnas::testing::policy(8, 8)));
  qnas::core::Rng rng(3);
  std::vector<qs::Genome> genomes = {base, space.random(rng), space.random(rng), space.random(rng)};
  std::vector<int> iterations = {0, 0, 1, 1};
  std::vector<qs::MetricValues> m = {{{"top1", 90}, {"model_bytes", 400}},
                                     {{"top1", 91}, {"model_bytes", 200}},   // dominates the baseline
                                     {{"top1", 90}, {"model_bytes", 100}},   // dominates, no loss, smallest
                                     {{"top1", 89}, {"model_bytes", 50}}};   // smaller but loses top1
  const auto c = qs::compare_baselines(space, goals, genomes, iterations, m);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].label, "int8 largest");
  EXPECT_EQ(c[0].dominated_by, 2);
  EXPECT_FALSE(c[0].on_front);
  EXPECT_EQ(c[0].no_loss_rows, 3);
  ASSERT_EQ(c[0].ratio_names, std::vector<std::string>{"model_bytes"});
  EXPECT_DOUBLE_EQ(c[0].ratios[0], 4.0);
  EXPECT_EQ(c[0].ratio_rows[0], 2);
}

TEST(Baselines, AResumedSearchKeepsThemAndWritesTheirComparison) {
  const auto net = quickstart_net();
  const qs::Space space(net->space());
  const qs::Validate validate = [](const sn::SubnetSpec& spec) { return synthetic_metrics(spec); };
  const qnas::testing::TempDir dir("baselines_resume");
  qs::SearchOptions o;
  o.cfg = search_config("nsga2");
  o.out_dir = dir.str();
  o.fingerprint = "test";
  int calls = 0;
  const qs::Validate dying = [&](const sn::SubnetSpec& spec) {
    if (calls++ == 3) throw qs::testing::Killed{};  // in the middle of the baselines
    return synthetic_metrics(spec);
  };
  EXPECT_THROW(qs::run_search(space, o, dying), qs::testing::Killed);
  o.resume = true;
  const auto r = qs::run_search(space, o, validate);
  ASSERT_EQ(r.rows.size(), 40u);
  ASSERT_EQ(r.baselines.size(), 11u);  // 6 + 25% of 20
  for (size_t i = 0; i < r.baselines.size(); ++i) EXPECT_EQ(r.baselines[i].row, int(i));
  EXPECT_EQ(r.baselines[0].label, "int8 largest");
  const auto csv = qs::read_csv(dir.file("baselines.csv"));
  ASSERT_EQ(csv.rows.size(), 11u);
  EXPECT_EQ(csv.rows[2][csv.column("baseline")], "fp32 largest");
  EXPECT_GE(csv.number(0, "model_bytes_ratio"), 1.0);
  const auto hv = qs::read_csv(dir.file("hypervolume.csv"));
  ASSERT_EQ(hv.rows.size(), 2u);
  EXPECT_EQ(hv.number(0, "baselines"), 11);
  EXPECT_LE(hv.number(1, "baselines_hypervolume"), hv.number(1, "hypervolume"));
}
