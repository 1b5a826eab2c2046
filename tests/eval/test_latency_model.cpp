// The latency model: its table is measured on this host through probe
// subnets, cached, and remeasured when the host, the latency config or the
// supernet changes; an estimate is the sum of the entries it lists.
#include <gtest/gtest.h>

#include <torch/utils.h>

#include "src/core/dataset.hpp"
#include "src/core/fs.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/latency_model.hpp"
#include "supernet/supernet.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

namespace {

core::Config small_config() {
  auto cfg = qnas::testing::tiny_config();
  cfg.supernet.kernel = {3};
  cfg.data.train_subset = 300;
  cfg.data.val_size = 50;
  cfg.quant.calib_images = 16;
  cfg.eval.bn_calib_images = 64;
  cfg.latency.warmup = 1;
  cfg.latency.runs = 3;
  return cfg;
}

struct Fixture {
  core::Config cfg = small_config();
  core::Dataset data = core::load_dataset(cfg.data, 1);
  supernet::Supernet net = [] {
    torch::manual_seed(0);
    return supernet::make_supernet(small_config(), {1, 28, 28, 10});
  }();
};

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

  // An estimate is the sum of the entries it lists; every layer of every
  // subnet of the space finds one, probed shapes and neighbours the most
  // specific one.
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
