// The search loop on synthetic objectives: resume after a kill equals an
// uninterrupted run; LINAS beats random at equal evaluations.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "search/runner.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "tests/search/synthetic.hpp"

namespace qs = qnas::search;
namespace fs = std::filesystem;

namespace {

// Accuracy-like objective with interactions, and a size-like cost.
qs::MetricValues synthetic_metrics(const qs::Space& space, const qnas::supernet::SubnetSpec& spec) {
  double acc = 60, size = 1000;
  int i = 0;
  for (const auto& [name, v] : spec.arch) {
    acc += (i % 3 == 0 ? 3.0 : 1.0) * std::sqrt(double(v)) + (i % 4 == 1 ? 0.5 * v * (v % 2) : 0.0);
    size += (i % 2 == 0 ? 400.0 : 150.0) * v;
    ++i;
  }
  return {{"top1", acc}, {"model_bytes", size}};
}

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& name)
      : path((fs::temp_directory_path() / ("qnas_test_" + name + "_" + std::to_string(getpid()))).string()) {
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// `tactic`, or linas_batch: linas validating 3 candidates per iteration after
// the first, or linas_initial: that after an initial population of 6.
qs::SearchOptions options(const std::string& dir, const std::string& tactic, uint64_t seed, int evaluations) {
  qs::SearchOptions o;
  const bool linas_variant = tactic == "linas_batch" || tactic == "linas_initial";
  o.cfg.tactic = linas_variant ? "linas" : tactic;
  o.cfg.linas_batch = linas_variant ? 3 : 0;
  o.cfg.linas_initial = tactic == "linas_initial" ? 6 : 0;
  o.cfg.objectives = {{"top1", "max"}, {"model_bytes", "min"}};
  o.cfg.population = 10;
  o.cfg.evaluations = evaluations;
  o.cfg.seed = seed;
  o.cfg.inner_evaluations = 3000;
  o.cfg.predictor = "ridge";
  o.out_dir = dir;
  o.fingerprint = "test";
  return o;
}

// evaluations.csv without the timing column.
std::string rows_without_timing(const std::string& path) {
  const auto t = qs::read_csv(path);
  std::string out;
  for (const auto& r : t.rows) {
    for (size_t i = 0; i + 1 < r.size(); ++i) out += r[i] + ",";
    out += "\n";
  }
  return out;
}

}  // namespace

TEST(Runner, ResumeAfterAKillEqualsAnUninterruptedRun) {
  const auto space = qs::testing::synthetic_space(8, 4, 5);
  for (const std::string tactic : {"nsga2", "linas", "linas_batch", "linas_initial"}) {
    TempDir full("full_" + tactic);
    const auto opts = options(full.path, tactic, 11, 42);
    const qs::Validate validate = [&](const auto& spec) { return synthetic_metrics(space, spec); };
    const auto whole = qs::run_search(space, opts, validate);
    EXPECT_EQ(whole.rows.size(), 42u);
    const std::string expected = rows_without_timing(full.path + "/evaluations.csv");
    auto again = opts;  // a finished search resumed: nothing left to validate, nothing timed
    again.resume = true;
    const auto done = qs::run_search(space, again, validate);
    EXPECT_EQ(done.rows.size(), 42u);
    EXPECT_EQ(done.eval_s, 0.0);
    EXPECT_LE(done.eval_s, done.wall_s);
    for (int kill_at : {0, 7, 10, 23, 41}) {
      TempDir part("part_" + tactic + std::to_string(kill_at));
      auto o = options(part.path, tactic, 11, 42);
      int calls = 0;
      const qs::Validate dying = [&](const auto& spec) {
        if (calls++ == kill_at) throw qs::testing::Killed{};
        return synthetic_metrics(space, spec);
      };
      EXPECT_THROW(qs::run_search(space, o, dying), qs::testing::Killed);
      if (kill_at == 23) {  // a row cut in the middle by the kill
        std::ofstream(part.path + "/evaluations.csv", std::ios::app) << "23,2,nsga2,\"{\"\"sup";
      }
      EXPECT_THROW(qs::run_search(space, o, validate), qnas::Error);  // exists: needs --resume
      o.resume = true;
      const auto resumed = qs::run_search(space, o, validate);
      EXPECT_EQ(rows_without_timing(part.path + "/evaluations.csv"), expected) << tactic << " killed at " << kill_at;
      EXPECT_DOUBLE_EQ(resumed.hypervolume, whole.hypervolume);
      EXPECT_EQ(qnas::core::read_text_file(part.path + "/pareto.csv", "p").size() > 0, true);
    }
  }
}

TEST(Runner, ResumeRefusesAnotherConfiguration) {
  const auto space = qs::testing::synthetic_space(5, 3);
  TempDir dir("fingerprint");
  auto o = options(dir.path, "random", 1, 20);
  const qs::Validate validate = [&](const auto& spec) { return synthetic_metrics(space, spec); };
  qs::run_search(space, o, validate);
  o.resume = true;
  o.fingerprint = "other";
  EXPECT_THROW(qs::run_search(space, o, validate), qnas::Error);
}

TEST(Runner, WritesHypervolumeWithItsReferencePoint) {
  const auto space = qs::testing::synthetic_space(6, 4);
  TempDir dir("files");
  const auto o = options(dir.path, "random", 3, 30);
  const qs::Validate validate = [&](const auto& spec) { return synthetic_metrics(space, spec); };
  const auto r = qs::run_search(space, o, validate);
  const auto hv = qs::read_csv(dir.path + "/hypervolume.csv");
  ASSERT_EQ(hv.rows.size(), 3u);
  EXPECT_EQ(hv.number(2, "evaluations"), 30);
  EXPECT_DOUBLE_EQ(hv.number(0, "ref_top1"), r.reference[0]);
  EXPECT_LE(hv.number(0, "hypervolume"), hv.number(2, "hypervolume"));
  const auto pareto = qs::read_csv(dir.path + "/pareto.csv");
  EXPECT_EQ(pareto.rows.size(), r.front.size());
  // Every front row is non-dominated among all rows.
  for (int i : r.front)
    for (const auto& row : r.rows)
      EXPECT_FALSE(row.metrics.at("top1") >= r.rows[size_t(i)].metrics.at("top1") &&
                   row.metrics.at("model_bytes") <= r.rows[size_t(i)].metrics.at("model_bytes") &&
                   (row.metrics.at("top1") > r.rows[size_t(i)].metrics.at("top1") ||
                    row.metrics.at("model_bytes") < r.rows[size_t(i)].metrics.at("model_bytes")));
}

TEST(Linas, BeatsRandomAtEqualEvaluations) {
  const auto space = qs::testing::synthetic_space(16, 5);
  const qs::Validate validate = [&](const auto& spec) { return synthetic_metrics(space, spec); };
  double linas_sum = 0, random_sum = 0;
  int linas_wins = 0;
  for (uint64_t seed : {1, 2, 3, 4}) {
    TempDir a("linas" + std::to_string(seed)), b("random" + std::to_string(seed));
    auto oa = options(a.path, "linas", seed, 60), ob = options(b.path, "random", seed, 60);
    // One reference point for both: the worst corner of the space.
    oa.cfg.reference_point = ob.cfg.reference_point = {60.0, 1000.0 + 16 * 4 * 400.0};
    const double hl = qs::run_search(space, oa, validate).hypervolume;
    const double hr = qs::run_search(space, ob, validate).hypervolume;
    linas_sum += hl, random_sum += hr, linas_wins += hl > hr;
  }
  EXPECT_GT(linas_sum, random_sum);
  EXPECT_GE(linas_wins, 3);
}

TEST(Linas, ExactProxiesReplaceTheirPredictors) {
  const auto space = qs::testing::synthetic_space(8, 4);
  const qs::Validate validate = [&](const auto& spec) { return synthetic_metrics(space, spec); };
  TempDir dir("exact");
  auto o = options(dir.path, "linas", 5, 30);
  int proxy_calls = 0;
  o.proxies = [&](const qs::Genome& g) {
    ++proxy_calls;
    return qs::MetricValues{{"model_bytes", synthetic_metrics(space, space.decode(g)).at("model_bytes")}};
  };
  qs::run_search(space, o, validate);
  const auto fits = qs::read_csv(dir.path + "/predictors.csv");
  ASSERT_FALSE(fits.rows.empty());
  for (const auto& r : fits.rows) EXPECT_EQ(r[fits.column("metric")], "top1");
  EXPECT_GT(proxy_calls, 500);  // the inner searches used them (cached per genome)
  // Without exact proxies, model_bytes gets a predictor of its own.
  TempDir dir2("predicted");
  auto p = options(dir2.path, "linas", 5, 30);
  p.cfg.exact_proxies = false;
  qs::run_search(space, p, validate);
  const auto fits2 = qs::read_csv(dir2.path + "/predictors.csv");
  EXPECT_EQ(fits2.rows.size(), 2 * fits.rows.size());
}

namespace {

// A LINAS variant of options() run on a synthetic space: rows validated per
// iteration, and the rows of predictors.csv (one per refit and metric).
struct BatchRun {
  std::map<int, int> per_iteration;
  size_t fits = 0;
};
void run_batches(const std::string& variant, int evaluations, BatchRun& out) {
  const auto space = qs::testing::synthetic_space(16, 5);
  const qs::Validate validate = [&](const auto& spec) { return synthetic_metrics(space, spec); };
  TempDir dir(variant);
  const auto r = qs::run_search(space, options(dir.path, variant, 2, evaluations), validate);
  ASSERT_EQ(r.rows.size(), size_t(evaluations));
  for (const auto& row : r.rows) ++out.per_iteration[row.iteration];
  out.fits = qs::read_csv(dir.path + "/predictors.csv").rows.size();
}

}  // namespace

TEST(Linas, ASmallerInitialPopulationLeavesMoreCandidatesToThePredictors) {
  BatchRun run;
  ASSERT_NO_FATAL_FAILURE(run_batches("linas_initial", 30, run));
  auto& per_iteration = run.per_iteration;
  EXPECT_EQ(per_iteration[0], 6);
  EXPECT_EQ(per_iteration.size(), 1u + 8u);  // then 8 batches of 3 (24 rows)
  for (int it = 1; it <= 8; ++it) EXPECT_EQ(per_iteration[it], 3) << it;
  EXPECT_EQ(run.fits, 8u * 2u);  // the predictors refit from 6 rows on
}

TEST(Linas, SmallBatchesRefitTheirPredictorsPerBatch) {
  BatchRun run;
  ASSERT_NO_FATAL_FAILURE(run_batches("linas_batch", 31, run));
  auto& per_iteration = run.per_iteration;
  EXPECT_EQ(per_iteration[0], 10);  // the initial population
  EXPECT_EQ(per_iteration.size(), 1u + 7u);  // then 7 batches of 3 (21 rows)
  for (int it = 1; it <= 7; ++it) EXPECT_EQ(per_iteration[it], 3) << it;
  EXPECT_EQ(run.fits, 7u * 2u);  // one refit per batch, top1 and model_bytes
}
