// The report in a real browser: a small search writes report.html, and
// Debian's Chromium (headless, driven by Playwright: tests/node/check_report.js)
// opens it with no console error and no network request, one scatter point
// per validated candidate and one heatmap row per front member. The
// screenshots are kept in the build folder (artifacts/) for a person to look at.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "src/core/fs.hpp"
#include "tests/e2e/cli_util.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_contains;
using qnas::testing::run;
using qnas::testing::tiny_yaml;

namespace {

int data_lines(const std::string& csv) {
  const std::string text = core::read_text_file(csv, "csv");
  return int(std::count(text.begin(), text.end(), '\n')) - 1;
}

// Runs check_report.js; returns its exit status, its output in `out`.
int check_in_browser(const std::string& page, const std::string& screenshot, int points, int heatmap_rows,
                     std::string& out) {
  const std::string node_dir = std::string(QNAS_SOURCE_DIR) + "/tests/node";
  EXPECT_TRUE(core::file_exists(node_dir + "/node_modules/playwright-core"))
      << "playwright-core is missing: run scripts/install-deps.sh (installs it into tests/node)";
  EXPECT_TRUE(core::file_exists("/usr/bin/chromium")) << "chromium is missing: run scripts/install-deps.sh";
  std::filesystem::create_directories(std::filesystem::path(screenshot).parent_path());
  const std::string cmd = "node " + node_dir + "/check_report.js " + page + " " + screenshot + " --points " +
                          std::to_string(points) + " --heatmap-rows " + std::to_string(heatmap_rows) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  return WEXITSTATUS(pclose(pipe));
}

}  // namespace

TEST(Report, ASmallSearchReportRendersInChromium) {
  qnas::testing::TempDir t("report_browser");
  const std::string search =
      "search: {tactic: linas, objectives: {top1: max, model_bytes: min, macs: min}, population: 4, evaluations: 12,"
      " inner_evaluations: 300, folds: 2, train_if_missing: true}\n";
  core::write_file_atomic(t.file("c.yaml"), tiny_yaml(t.file("run"), 1) + search);
  const auto r = run("search " + t.file("c.yaml"));
  ASSERT_EQ(r.code, 0) << r.output;
  expect_contains(r.output, "report: " + t.file("run/report.html"));
  for (const char* f : {"report.html", "run.json", "predictions.csv", "space.json"}) EXPECT_TRUE(core::file_exists(t.file("run/") + f)) << f;
  const int rows = data_lines(t.file("run/evaluations.csv")), front = data_lines(t.file("run/pareto.csv"));
  ASSERT_EQ(rows, 12);

  std::string out;
  const std::string artifacts = std::filesystem::path(QNAS_BINARY).parent_path().string() + "/artifacts";
  EXPECT_EQ(check_in_browser(t.file("run/report.html"), artifacts + "/report_small_search.png", rows, front, out), 0) << out;
  std::fprintf(stderr, "one run: %s", out.c_str());

  // Two runs on one page (the same folder twice: names told apart).
  const auto two = run("report " + t.file("run") + " " + t.file("run") + " --out " + t.file("two.html") + " --data " +
                       t.file("two.json"));
  ASSERT_EQ(two.code, 0) << two.output;
  // --data: the page's data, what experiments/report_figures.py draws.
  const auto data = nlohmann::json::parse(core::read_text_file(t.file("two.json"), "report data"));
  EXPECT_EQ(data["rows"].size(), size_t(2 * rows));
  EXPECT_EQ(data["runs"].size(), 2u);
  out.clear();
  EXPECT_EQ(check_in_browser(t.file("two.html"), artifacts + "/report_two_runs.png", 2 * rows, 2 * front, out), 0) << out;
  std::fprintf(stderr, "two runs: %s", out.c_str());

  // --no-report leaves no page (a resume of the finished search validates nothing).
  std::filesystem::remove(t.file("run/report.html"));
  const auto quiet = run("search " + t.file("c.yaml") + " --resume --no-report");
  ASSERT_EQ(quiet.code, 0) << quiet.output;
  EXPECT_FALSE(core::file_exists(t.file("run/report.html")));
  // A folder that is not a run is refused by name; several runs need --out.
  const auto not_run = run("report " + t.file("nothing_here"));
  EXPECT_NE(not_run.code, 0);
  expect_contains(not_run.output, "is not a qnas search run");
  const auto several = run("report " + t.file("run") + " " + t.file("run"));
  EXPECT_NE(several.code, 0);
  expect_contains(several.output, "--out");
}
