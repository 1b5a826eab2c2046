// `qnas report` without a browser: the data a page draws from run folders
// written here (1, 2 and 3 objectives, several runs, a killed run, folders
// that are not runs), and the page's self-containment. The browser test is
// tests/e2e/test_report.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "search/objectives.hpp"
#include "search/results.hpp"
#include "search/runner.hpp"
#include "src/core/config.hpp"
#include "src/core/fs.hpp"
#include "src/core/rng.hpp"
#include "src/report/report.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using nlohmann::json;
using qnas::testing::expect_error;
using qnas::testing::TempDir;

namespace {

const std::vector<std::string> kLayers = {"stem", "s0.b0.pw", "s0.b1.pw", "classifier"};

// A spec over kLayers: depth 1 leaves s0.b1 out (inactive).
std::string spec_json(int depth, int wbits, int abits) {
  json policy;
  for (const auto& l : kLayers)
    if (depth == 2 || l != "s0.b1.pw") policy[l] = {{"weight_bits", wbits}, {"act_bits", abits}, {"method", "rtn"}};
  return json({{"arch", {{"s0.depth", depth}, {"s0.b0.expand", 3}}}, {"policy", policy}}).dump();
}

struct FakeRun {
  std::string dir;
  std::vector<search::MetricValues> metrics;
};

// A run folder as `qnas search` leaves it, with `rows` candidates of
// pseudo-random metrics out of `target`; `objectives` as in the config.
FakeRun write_run(const std::string& dir, const core::NamedValues& objectives, int rows, int target,
                  const std::string& tactic = "linas", uint64_t seed = 0) {
  core::Config c;
  c.search.objectives = objectives;
  c.search.tactic = tactic;
  c.search.evaluations = target;
  c.search.population = 4;
  c.output.dir = dir;
  core::write_resolved_config(c, dir);
  core::write_file_atomic(dir + "/space.json", json({{"layers", kLayers}, {"methods", {"rtn"}}}).dump());
  core::CsvAppender csv(dir + "/evaluations.csv", search::evaluation_header());
  core::Rng rng(seed);
  FakeRun run{dir, {}};
  for (int i = 0; i < rows; ++i) {
    search::Row r;
    r.id = i, r.iteration = i / 4, r.tactic = tactic;
    const int depth = 1 + int(core::uniform_index(rng, 2)), wbits = core::uniform_index(rng, 2) ? 4 : 8;
    r.spec_json = spec_json(depth, wbits, wbits == 4 ? 8 : 32);
    r.metrics = {{"top1", 80 + 10 * core::uniform01(rng)}, {"latency_ms", 0.1 + core::uniform01(rng)},
                 {"model_bytes", double(1000 + int(core::uniform_index(rng, 9000)))}, {"macs", 1e6 * (1 + core::uniform01(rng))}};
    csv.append(search::row_fields(r));
    run.metrics.push_back(r.metrics);
  }
  return run;
}

size_t front_flags(const json& data) {
  return size_t(std::count_if(data["rows"].begin(), data["rows"].end(), [](const json& r) { return r["front"].get<bool>(); }));
}

}  // namespace

TEST(Report, OneTwoAndThreeObjectives) {
  const std::vector<core::NamedValues> cases = {
      {{"top1", "max"}},
      {{"top1", "max"}, {"model_bytes", "min"}},
      {{"top1", "max"}, {"latency_ms", "min"}, {"model_bytes", "min"}}};
  for (const auto& objectives : cases) {
    TempDir t("report_objectives");
    const auto run = write_run(t.str(), objectives, 24, 24);
    const json data = report::collect({t.str()});
    ASSERT_EQ(data["objectives"].size(), objectives.size());
    ASSERT_EQ(data["rows"].size(), 24u);
    core::Config c;
    c.search.objectives = objectives;
    const auto goals = search::Goals::from_config(c.search);
    const auto front = search::rows_front(goals, run.metrics);
    EXPECT_EQ(front_flags(data), front.size()) << objectives.size() << " objectives";
    const auto& r = data["runs"][0];
    EXPECT_TRUE(r["complete"].get<bool>());
    // One heatmap cell per (front member, layer); depth-1 members show s0.b1 inactive.
    EXPECT_EQ(r["heatmap"].size(), front.size() * kLayers.size());
    for (const auto& cell : r["heatmap"]) {
      if (cell["w"] == "inactive") {
        EXPECT_EQ(cell["layer"], "s0.b1.pw");
      } else {
        EXPECT_TRUE(cell.contains("a") && cell.contains("method"));
      }
    }
    // The curve ends at the hypervolume of all rows against the run's reference.
    ASSERT_FALSE(r["hv"].empty());
    EXPECT_EQ(r["hv"].back()["evaluations"], 24);
    const auto ref = search::default_reference(goals, run.metrics);
    EXPECT_NEAR(r["hv"].back()["hypervolume"].get<double>(), search::rows_hypervolume(goals, run.metrics, ref), 1e-9);
  }
}

TEST(Report, HeatmapRowsAreFrontMembersBestFirstWithInactiveLayers) {
  TempDir t("report_heatmap");
  write_run(t.str(), {{"top1", "max"}, {"model_bytes", "min"}}, 30, 30);
  const json data = report::collect({t.str()});
  std::vector<double> top1_by_order;
  std::map<std::string, double> top1;
  for (const auto& r : data["rows"]) top1["id " + std::to_string(r["id"].get<int>())] = r["top1"];
  int inactive = 0;
  for (const auto& cell : data["runs"][0]["heatmap"]) {
    if (cell["layer"] == "stem") top1_by_order.push_back(top1.at(cell["member"]));
    if (cell["w"] == "inactive") {
      ++inactive;
      EXPECT_EQ(cell["layer"], "s0.b1.pw");
    }
  }
  EXPECT_TRUE(std::is_sorted(top1_by_order.rbegin(), top1_by_order.rend())) << "best top1 first";
  EXPECT_GT(inactive, 0) << "some front member has depth 1";
}

TEST(Report, WithoutSpaceJsonTheHeatmapShowsTheLayersMembersUse) {
  TempDir t("report_no_space");
  write_run(t.str(), {{"top1", "max"}, {"model_bytes", "min"}}, 30, 30);
  std::filesystem::remove(t.file("space.json"));
  const json data = report::collect({t.str()});
  const auto& r = data["runs"][0];
  EXPECT_NE(r["notes"].dump().find("no space.json"), std::string::npos);
  std::set<std::string> layers;
  bool deep = false;  // some member uses s0.b1: its column is there, inactive for the others
  for (const auto& cell : r["heatmap"]) {
    layers.insert(cell["layer"]);
    deep = deep || (cell["w"] != "inactive" && cell["layer"] == "s0.b1.pw");
  }
  EXPECT_EQ(layers.size(), deep ? kLayers.size() : kLayers.size() - 1);
  EXPECT_EQ(r["heatmap"].size(), layers.size() * size_t(front_flags(data)));
}

TEST(Report, SeveralRunsShareOneReferenceAndGroupByTactic) {
  TempDir t("report_runs");
  const auto a = write_run(t.file("seed0"), {{"top1", "max"}, {"model_bytes", "min"}}, 20, 20, "linas", 0);
  const auto b = write_run(t.file("seed1"), {{"top1", "max"}, {"model_bytes", "min"}}, 16, 20, "linas", 1);
  const auto c = write_run(t.file("nsga"), {{"top1", "max"}, {"model_bytes", "min"}}, 20, 20, "nsga2", 2);
  const json data = report::collect({a.dir, b.dir, c.dir});
  EXPECT_EQ(data["rows"].size(), 56u);
  ASSERT_EQ(data["hv_groups"].size(), 2u);
  for (const auto& g : data["hv_groups"]) {
    EXPECT_EQ(g["runs"], g["tactic"] == "linas" ? 2 : 1);
    for (const auto& p : g["points"]) {
      EXPECT_LE(p["lo"].get<double>(), p["mean"].get<double>() + 1e-12);
      EXPECT_LE(p["mean"].get<double>(), p["hi"].get<double>() + 1e-12);
      // Past the shorter run's 16 rows only one linas run is left.
      if (g["tactic"] == "linas") {
        EXPECT_EQ(p["runs_here"], p["evaluations"].get<int>() <= 16 ? 2 : 1);
      }
    }
  }
  // The common reference is no better than either run's own in any objective.
  core::Config cfg;
  cfg.search.objectives = {{"top1", "max"}, {"model_bytes", "min"}};
  const auto goals = search::Goals::from_config(cfg.search);
  const auto ref = data["reference"]["point"].get<std::vector<double>>();
  for (const auto* run : {&a, &b, &c}) {
    const auto own = search::default_reference(goals, run->metrics);
    EXPECT_LE(ref[0], own[0]);
    EXPECT_GE(ref[1], own[1]);
  }
  EXPECT_FALSE(data["runs"][1]["complete"].get<bool>());
  // Same folder name twice: told apart.
  const json twice = report::collect({a.dir, a.dir});
  EXPECT_NE(twice["runs"][0]["name"], twice["runs"][1]["name"]);
}

TEST(Report, AKilledRunReportsWhatItHasAndSaysSo) {
  TempDir t("report_killed");
  write_run(t.str(), {{"top1", "max"}, {"model_bytes", "min"}}, 9, 40);
  {
    std::ofstream cut(t.file("evaluations.csv"), std::ios::app);
    cut << "9,2,linas,\"{\"\"arch";  // the writer killed mid-row
  }
  const json data = report::collect({t.str()});
  EXPECT_EQ(data["rows"].size(), 9u);
  const auto& r = data["runs"][0];
  EXPECT_FALSE(r["complete"].get<bool>());
  const std::string notes = r["notes"].dump();
  EXPECT_NE(notes.find("incomplete: 9 of 40"), std::string::npos) << notes;
  EXPECT_NE(notes.find("cut line"), std::string::npos) << notes;
  EXPECT_NE(notes.find("--resume"), std::string::npos) << notes;
  // Killed before the first row: still a report, with nothing to draw.
  TempDir empty("report_started");
  core::Config c;
  core::write_resolved_config(c, empty.str());
  const json none = report::collect({empty.str()});
  EXPECT_TRUE(none["rows"].empty());
  EXPECT_NE(none["runs"][0]["notes"].dump().find("no candidate was validated yet"), std::string::npos);
  EXPECT_FALSE(report::render_page(none).empty());
}

TEST(Report, AFolderThatIsNotARunIsAClearError) {
  TempDir t("report_not_run");
  expect_error([&] { report::collect({t.str()}); }, {t.str(), "is not a qnas search run", "output.dir"});
  expect_error([&] { report::collect({t.file("missing")}); }, {t.file("missing"), "is not a qnas search run"});
  core::write_file_atomic(t.file("evaluations.csv"), "id,top1\n1,2\n");
  expect_error([&] { report::collect({t.str()}); }, {"no config.resolved.yaml"});
  TempDir a("report_obj_a"), b("report_obj_b");
  write_run(a.str(), {{"top1", "max"}, {"model_bytes", "min"}}, 5, 5);
  write_run(b.str(), {{"top1", "max"}, {"latency_ms", "min"}}, 5, 5);
  expect_error([&] { report::collect({a.str(), b.str()}); }, {b.str(), "top1:max, latency_ms:min", "share their objectives"});
  expect_error([&] { report::collect({}); }, {"no run folder"});
}

TEST(Report, PredictionsOfTheLastRefitMeetTheirRows) {
  TempDir t("report_predictions");
  const auto run = write_run(t.str(), {{"top1", "max"}, {"model_bytes", "min"}}, 12, 12);
  core::write_file_atomic(t.file("predictions.csv"),
                          "id,iteration,metric,predicted\n4,1,top1,85\n8,2,top1,80\n9,2,top1,90\n11,2,top1,88\n");
  const json p = report::collect({t.str()})["runs"][0]["predictions"];
  ASSERT_FALSE(p.is_null());
  EXPECT_EQ(p["iteration"], 2);
  EXPECT_EQ(p["rows"], 3);
  ASSERT_EQ(p["points"].size(), 3u);
  EXPECT_DOUBLE_EQ(p["points"][0]["measured"].get<double>(), run.metrics[8].at("top1"));
  EXPECT_EQ(p["summary"][0]["metric"], "top1");
}

TEST(Report, ThePageIsSelfContained) {
  TempDir t("report_page");
  write_run(t.str(), {{"top1", "max"}, {"model_bytes", "min"}}, 10, 10);
  // A config value that would end a <script> element if written raw.
  std::ofstream(t.file("config.resolved.yaml"), std::ios::app) << "# </script><script>alert(1)</script>\n";
  const size_t bytes = report::write_report({t.str()}, t.file("report.html"));
  const std::string page = core::read_text_file(t.file("report.html"), "report");
  EXPECT_EQ(page.size(), bytes);
  EXPECT_EQ(page.find("alert(1)</script>"), std::string::npos) << "the JSON must not close its element";
  EXPECT_NE(page.find("Content-Security-Policy"), std::string::npos);
  EXPECT_NE(page.find("default-src 'none'"), std::string::npos);
  for (const char* lib : {"vega 6", "vega-lite 6", "vega-embed 7", "qnas report.js"})
    EXPECT_NE(page.find(lib), std::string::npos) << lib << " inlined";
  // Nothing is loaded from elsewhere.
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  // The data block parses back to collect()'s data.
  const auto open = page.find("<script id=\"qnas-data\" type=\"application/json\">");
  ASSERT_NE(open, std::string::npos);
  const auto start = page.find('>', open) + 1, end = page.find("</script>", start);
  EXPECT_EQ(json::parse(page.substr(start, end - start)), report::collect({t.str()}));
}
