// The latency model: its table is measured on this host through probe
// subnets, cached, and remeasured when the host, the latency config or the
// supernet changes; an estimate is the sum of the entries it lists.
#include <gtest/gtest.h>

#include <set>

#include <torch/utils.h>

#include "src/core/dataset.hpp"
#include "src/core/fs.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/latency_model.hpp"
#include "supernet/supernet.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

namespace {

core::Config small_config(const std::string& kind = "mbv3") {
  auto cfg = qnas::testing::tiny_config("", kind);
  cfg.supernet.mbv3.kernel = {3};
  cfg.supernet.vit.embed_dim = {32};
  cfg.supernet.vit.heads = {2};
  cfg.data.train_subset = 300;
  cfg.data.val_size = 50;
  cfg.quant.calib_images = 16;
  cfg.eval.bn_calib_images = 64;
  cfg.latency.warmup = 1;
  cfg.latency.runs = 3;
  return cfg;
}

struct Fixture {
  explicit Fixture(const std::string& kind = "mbv3") : cfg(small_config(kind)) {}
  core::Config cfg;
  core::Dataset data = core::load_dataset(cfg.data, 1);
  supernet::Supernet net = [this] {
    torch::manual_seed(0);
    return supernet::make_supernet(cfg, {1, 28, 28, 10});
  }();
};

// Every layer of random subnets finds an entry, and the estimate is the sum
// of the entries it lists; the largest subnet's layers find the most
// specific one (probed shapes and neighbours).
void expect_estimates_cover_the_space(const Fixture& f, const eval::LatencyModel& model) {
  core::Rng rng(3);
  for (int i = 0; i < 20; ++i) {
    const auto spec = supernet::random_spec(f.net->space(), rng);
    const auto e = model.estimate(f.net->layer_infos(spec));
    double sum = 0;
    for (const auto& item : e.items) {
      EXPECT_EQ(item.ms, model.table().at(item.key)) << item.layer;
      sum += item.ms;
    }
    EXPECT_DOUBLE_EQ(e.ms, sum);
    EXPECT_EQ(e.unmodelled, 0);
    EXPECT_EQ(e.items.size(), f.net->layer_infos(spec).size());
  }
  const auto largest = supernet::largest_spec(f.net->space(), {8, 8, "rtn", {}});
  const auto layers = f.net->layer_infos(largest);
  const auto e = model.estimate(layers);
  for (size_t k = 0; k < layers.size(); ++k)
    EXPECT_EQ(e.items[k].key, eval::segment_keys(layers[k], k ? &layers[k - 1] : nullptr).front());
}

}  // namespace

TEST(LatencyModel, PrecisionClassesFollowTheGraphsRules) {
  EXPECT_EQ(eval::precision_class({8, 8, "rtn", {}}), "int8");
  EXPECT_EQ(eval::precision_class({4, 8, "gptq", {}}), "int8");
  EXPECT_EQ(eval::precision_class({32, 8, "rtn", {}}), "qin");
  EXPECT_EQ(eval::precision_class({4, 8, "decoupleq", {}}), "qin");  // general grid: fp32 kernel
  EXPECT_EQ(eval::precision_class({8, 32, "rtn", {}}), "fp32");
  EXPECT_EQ(eval::precision_class({8, 32, "rtn", {{"dynamic", 1}}}), "dyn");
  EXPECT_EQ(eval::precision_class({4, 8, "admm_cp", {}}), "int8+cp");
}

TEST(LatencyModel, MeasuredOnTheHostCachedAndRemeasuredWhenItsIdentityChanges) {
  Fixture f;
  qnas::testing::TempDir dir("latency_model");
  const auto path = eval::LatencyModel::path_in(dir.str());
  eval::Evaluator evaluator(f.cfg, f.net, f.data);
  bool measured = false;
  const auto model = eval::LatencyModel::load_or_build(evaluator, f.net->space(), path, &measured);
  EXPECT_TRUE(measured);  // nothing cached: measured here
  EXPECT_TRUE(core::file_exists(path));
  // 2 expand ratios x 2 depths, 3 uniform classes + 6 alternating pairs.
  EXPECT_EQ(model.probes(), 36);
  ASSERT_FALSE(model.table().empty());
  for (const auto& [key, ms] : model.table()) EXPECT_GT(ms, 0) << key;
  EXPECT_EQ(model.identity()["host"], eval::host_description());

  const auto again = eval::LatencyModel::load_or_build(evaluator, f.net->space(), path, &measured);
  EXPECT_FALSE(measured);
  EXPECT_EQ(again.table(), model.table());

  eval::LatencyModelOptions other_host;
  other_host.host = {{"cpu", "another CPU"}, {"cores", 64}, {"hostname", "elsewhere"}};
  eval::LatencyModel::load_or_build(evaluator, f.net->space(), path, &measured, other_host);
  EXPECT_TRUE(measured);

  auto cfg = f.cfg;
  cfg.latency.runs = 4;
  eval::Evaluator other_latency(cfg, f.net, f.data);
  eval::LatencyModel::load_or_build(other_latency, f.net->space(), path, &measured, other_host);
  EXPECT_TRUE(measured);
  eval::LatencyModel::load_or_build(other_latency, f.net->space(), path, &measured, other_host);
  EXPECT_FALSE(measured);

  expect_estimates_cover_the_space(f, model);
}

// A transformer's attention (QK^T, softmax, AV), LayerNorms and embedding
// are layers without a policy: each is a segment of its own, timed, so an
// estimate counts them where they run rather than in the next linear's.
TEST(LatencyModel, ATransformersWeightlessPartsAreSegmentsOfTheirOwn) {
  Fixture f("vit");
  qnas::testing::TempDir dir("latency_model_vit");
  eval::Evaluator evaluator(f.cfg, f.net, f.data);
  const auto model = eval::LatencyModel::load_or_build(evaluator, f.net->space(), eval::LatencyModel::path_in(dir.str()));
  // 2 MLP ratios x 2 depths, 3 uniform classes + 6 alternating pairs.
  EXPECT_EQ(model.probes(), 36);
  expect_estimates_cover_the_space(f, model);
  const auto largest = supernet::largest_spec(f.net->space(), {8, 8, "rtn", {}});
  std::set<std::string> kinds;
  const auto layers = f.net->layer_infos(largest);
  const auto e = model.estimate(layers);
  for (size_t k = 0; k < layers.size(); ++k) {
    EXPECT_GT(e.items[k].ms, 0) << layers[k].name;
    kinds.insert(layers[k].kind);
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"attention", "conv", "embed", "layer_norm", "linear"}));
  const auto smallest = supernet::smallest_spec(f.net->space(), {8, 8, "rtn", {}});
  EXPECT_LT(model.estimate(f.net->layer_infos(smallest)).ms, e.ms);
}

TEST(LatencyModel, LatencyMsIsTheRatioToTheAllInt8LargestTimesTheRunsAnchor) {
  Fixture f;
  eval::Evaluator evaluator(f.cfg, f.net, f.data);
  eval::EvalOptions opts;
  opts.latency = true;
  opts.max_images = 16;
  const auto reference = evaluator.latency_reference_spec();
  EXPECT_EQ(reference, supernet::largest_spec(f.net->space(), {8, 8, "rtn", {}}));
  const auto r = evaluator.evaluate(reference, "val", opts);
  const double anchor = evaluator.latency_anchor_ms();
  EXPECT_GT(anchor, 0);
  // The reference against itself: a ratio near one.
  EXPECT_GT(r.metrics.at("latency_ratio"), 0.5);
  EXPECT_LT(r.metrics.at("latency_ratio"), 2.0);
  EXPECT_NEAR(r.metrics.at("latency_ms"), r.metrics.at("latency_ratio") * anchor, 1e-9);

  // Another anchor (another run folder's) rescales latency_ms alone.
  evaluator.set_latency_anchor_ms(2 * anchor);
  const auto smallest = supernet::smallest_spec(f.net->space(), {8, 8, "rtn", {}});
  const auto s = evaluator.evaluate(smallest, "val", opts);
  EXPECT_NEAR(s.metrics.at("latency_ms"), s.metrics.at("latency_ratio") * 2 * anchor, 1e-9);
  EXPECT_THROW(evaluator.set_latency_anchor_ms(0), Error);

  auto cfg = f.cfg;
  cfg.latency.reference = "none";
  eval::Evaluator alone(cfg, f.net, f.data);
  const auto a = alone.evaluate(smallest, "val", opts);
  EXPECT_GT(a.metrics.at("latency_ms"), 0);
  EXPECT_EQ(a.metrics.count("latency_ratio"), 0u);
}

TEST(LatencyModel, TheAnchorIsMeasuredOncePerRunFolderAndHost) {
  Fixture f;
  qnas::testing::TempDir dir("latency_anchor");
  const auto path = eval::anchor_path_in(dir.str());
  bool measured = false;
  eval::Evaluator first(f.cfg, f.net, f.data);
  const double ms = eval::load_or_measure_anchor(first, f.net->space(), path, /*write=*/true, &measured);
  EXPECT_TRUE(measured);
  EXPECT_GT(ms, 0);
  ASSERT_TRUE(core::file_exists(path));

  // A later process (a resumed search, qnas eval) uses the stored anchor.
  eval::Evaluator second(f.cfg, f.net, f.data);
  EXPECT_EQ(eval::load_or_measure_anchor(second, f.net->space(), path, true, &measured), ms);
  EXPECT_FALSE(measured);
  EXPECT_EQ(second.latency_anchor_ms(), ms);

  // Another host or latency config measures its own; write = false leaves the file.
  const auto before = core::read_text_file(path, "anchor");
  eval::LatencyModelOptions other_host;
  other_host.host = {{"cpu", "another CPU"}, {"cores", 64}, {"hostname", "elsewhere"}};
  eval::Evaluator third(f.cfg, f.net, f.data);
  eval::load_or_measure_anchor(third, f.net->space(), path, /*write=*/false, &measured, other_host);
  EXPECT_TRUE(measured);
  EXPECT_EQ(core::read_text_file(path, "anchor"), before);
  auto cfg = f.cfg;
  cfg.latency.rounds = 3;
  eval::Evaluator other_rounds(cfg, f.net, f.data);
  eval::load_or_measure_anchor(other_rounds, f.net->space(), path, /*write=*/true, &measured);
  EXPECT_TRUE(measured);
  EXPECT_NE(core::read_text_file(path, "anchor"), before);

  cfg.latency.reference = "none";
  eval::Evaluator none(cfg, f.net, f.data);
  EXPECT_EQ(eval::load_or_measure_anchor(none, f.net->space(), path, true, &measured), 0);
  EXPECT_FALSE(measured);
}
