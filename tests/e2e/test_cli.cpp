// The qnas command: clear errors for bad input, eval / compress / export /
// search on a tiny trained supernet, and runs killed with SIGKILL then
// resumed end as uninterrupted ones.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "src/core/fs.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"
#include "tests/e2e/cli_util.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_contains;
using qnas::testing::run;
using qnas::testing::tiny_yaml;

TEST(Cli, BadConfigKeyIsAClearError) {
  qnas::testing::TempDir dir("cli");
  core::write_file_atomic(dir.file("c.yaml"), "train:\n  epoch: 3\n");
  const auto r = run("train " + dir.file("c.yaml"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.output, "qnas: error: invalid config " + dir.file("c.yaml"));
  expect_contains(r.output, "train.epoch (line 2): unknown key; did you mean 'train.epochs'?");
  const auto s = run("config " + dir.file("c.yaml") + " --set train.epoch=2");
  expect_contains(s.output, "did you mean 'train.epochs'?");
  expect_contains(run("train /no/such.yaml").output, "config file '/no/such.yaml': cannot open");
}

// Bad data is refused before the run folder is made: a truncated CIFAR
// file, an image folder with a corrupt image, a mean list of the wrong
// length. Each message names the file or key.
TEST(Cli, BadDataIsRefusedAndNothingIsWritten) {
  qnas::testing::TempDir dir("cli_data");
  std::filesystem::create_directories(dir.file("cifar"));
  std::ofstream(dir.file("cifar/data_batch_1.bin"), std::ios::binary) << std::string(3073 + 10, '\1');
  std::ofstream(dir.file("cifar/test_batch.bin"), std::ios::binary) << std::string(3073, '\1');
  std::filesystem::create_directories(dir.file("cifar_ok"));
  for (const char* f : {"cifar_ok/data_batch_1.bin", "cifar_ok/test_batch.bin"})
    std::ofstream(dir.file(f), std::ios::binary) << std::string(2 * 3073, '\1');
  std::filesystem::create_directories(dir.file("img/train/a"));
  std::filesystem::create_directories(dir.file("img/test/a"));
  std::ofstream(dir.file("img/train/a/x.png"), std::ios::binary) << "not a png";
  std::ofstream(dir.file("img/test/a/y.png"), std::ios::binary) << "not a png";
  const std::string run_dir = dir.file("run");
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases{
      {"{format: cifar, dir: " + dir.file("cifar") + ", val_size: 0}", {dir.file("cifar/data_batch_1.bin"), "3083 bytes"}},
      {"{format: folder, dir: " + dir.file("img") + ", val_size: 0}", {dir.file("img/train/a/x.png"), "PNG"}},
      {"{format: cifar, dir: " + dir.file("cifar_ok") + ", val_size: 0, mean: [0.5, 0.5]}",
       {"data.mean", "2 values", "3 channels"}}};
  for (const auto& [data, fragments] : cases) {
    core::write_file_atomic(dir.file("c.yaml"), "data: " + data + "\noutput: {dir: " + run_dir + "}\n");
    const auto r = run("train " + dir.file("c.yaml"));
    EXPECT_EQ(r.code, 1) << r.output;
    for (const auto& f : fragments) expect_contains(r.output, f);
    EXPECT_FALSE(std::filesystem::exists(run_dir)) << data;
  }
}

TEST(Cli, EvalRejectsBadSubnetAndBits) {
  qnas::testing::TempDir dir("cli");
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.str(), 1));
  expect_contains(run("eval " + dir.file("c.yaml")).output, "supernet.pt' does not exist");
  expect_contains(run("eval " + dir.file("c.yaml") + " --bits 5/8").output, "weight_bits 5; expected one of {2, 3, 4, 8, 32}");
  expect_contains(run("eval " + dir.file("c.yaml") + " --bits x").output, "--bits 'x': expected W or W/A");
  expect_contains(run("eval " + dir.file("c.yaml") + " --subnet medium").output,
                  "--subnet 'medium': expected largest, smallest, random or a path to a spec .json file");
}

TEST(Cli, KilledTrainingResumesToTheSameWeights) {
  qnas::testing::TempDir a("cli_full"), b("cli_killed");
  core::write_file_atomic(a.file("c.yaml"), tiny_yaml(a.file("run"), 3));
  core::write_file_atomic(b.file("c.yaml"), tiny_yaml(b.file("run"), 3));
  ASSERT_EQ(run("train " + a.file("c.yaml")).code, 0);

  // Kill -9 once the first checkpoint exists, i.e. somewhere in epoch 2 or 3.
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execl(QNAS_BINARY, QNAS_BINARY, "train", b.file("c.yaml").c_str(), nullptr);
    _exit(127);
  }
  const auto ckpt = supernet::checkpoint_path(b.file("run"));
  for (int i = 0; i < 600 && !core::file_exists(ckpt); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(core::file_exists(ckpt));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto resumed = run("train " + b.file("c.yaml") + " --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;

  const auto cfg = core::load_config(a.file("c.yaml"));
  auto full = eval::open_session(cfg, supernet::checkpoint_path(a.file("run"))).net;
  auto killed = eval::open_session(core::load_config(b.file("c.yaml")), ckpt).net;
  for (const auto& item : full->named_parameters())
    EXPECT_TRUE(item.value().equal(killed->named_parameters()[item.key()])) << item.key();
  // The training log has exactly one row per epoch.
  const auto log = core::read_text_file(b.file("run") + "/train_log.csv", "log");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 4) << log;
  // No temp files left behind.
  for (const auto& f : std::filesystem::directory_iterator(b.file("run")))
    EXPECT_EQ(f.path().string().find(".tmp."), std::string::npos) << f.path();
}

TEST(Cli, EvalAndCompressPrintMetricsAndWriteJson) {
  qnas::testing::TempDir dir("cli_eval");
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.file("run"), 1));
  ASSERT_EQ(run("train " + dir.file("c.yaml")).code, 0);
  EXPECT_TRUE(core::file_exists(dir.file("run/config.resolved.yaml")));
  EXPECT_TRUE(core::file_exists(dir.file("run/space.json")));
  const auto r = run("eval " + dir.file("c.yaml") + " --subnet smallest --bits 8/8 --split val --json " + dir.file("e.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* col : {"top1", "params", "macs", "bops", "model_bytes"}) expect_contains(r.output, col);
  const auto j = nlohmann::json::parse(core::read_text_file(dir.file("e.json"), "json"));
  EXPECT_EQ(j["split"], "val");
  EXPECT_EQ(j["images"], 300);
  EXPECT_GT(j["metrics"]["top1"].get<double>(), 20.0);  // chance: 10% (+-1.7 points on 300 images)
  EXPECT_EQ(j["spec"]["policy"]["stem"]["weight_bits"], 8);
  // The spec it wrote is accepted back as --subnet.
  core::write_file_atomic(dir.file("spec.json"), j["spec"].dump());
  const auto again = run("eval " + dir.file("c.yaml") + " --subnet " + dir.file("spec.json") + " --split val --format json");
  ASSERT_EQ(again.code, 0) << again.output;
  const auto first = again.output.find('['), last = again.output.rfind(']');
  const auto table = nlohmann::json::parse(again.output.substr(first, last - first + 1));
  EXPECT_NEAR(table[0]["top1"].get<double>(), j["metrics"]["top1"].get<double>(), 0.006);

  // compress: GPTQ on every layer, per-layer errors against round-to-nearest.
  const auto c = run("compress " + dir.file("c.yaml") + " --subnet smallest --bits 4/8 --method gptq --json " +
                     dir.file("c.json"));
  ASSERT_EQ(c.code, 0) << c.output;
  for (const char* col : {"top1", "model_bytes", "latency_ms", "method time", "rtn_error", "stem"})
    expect_contains(c.output, col);
  const auto cj = nlohmann::json::parse(core::read_text_file(dir.file("c.json"), "json"));
  ASSERT_FALSE(cj["compression"].empty());
  for (const auto& l : cj["compression"]) {
    EXPECT_EQ(l["method"], "gptq");
    EXPECT_LE(l["error"].get<double>(), l["rtn_error"].get<double>() * 1.0001) << l["layer"];
  }
  // Bad method input is refused before anything loads.
  expect_contains(run("compress " + dir.file("c.yaml") + " --bits 32 --method gptq").output,
                  "gptq quantizes weights; expected weight_bits <= 8");
  expect_contains(run("compress " + dir.file("c.yaml") + " --bits 4 --method gptq --alpha 0.5").output,
                  "method gptq has no parameter 'alpha'");
  expect_contains(run("compress " + dir.file("c.yaml") + " --bits 8/8 --method smoothquant --alpha 1.5").output,
                  "alpha 1.5; expected a value in [0, 1]");
  expect_contains(run("compress " + dir.file("c.yaml") + " --bits 4 --method awq").output, "--method: awq not in");

  // sensitivity: every layer ranked, the metrics in its JSON.
  const auto s = run("sensitivity " + dir.file("c.yaml") + " --subnet smallest --bits 2/8 --json " + dir.file("s.json"));
  ASSERT_EQ(s.code, 0) << s.output;
  for (const char* col : {"rank", "local_sqnr_db", "score", "two passes"}) expect_contains(s.output, col);
  const auto sj = nlohmann::json::parse(core::read_text_file(dir.file("s.json"), "json"));
  EXPECT_EQ(sj["passes"][0]["layers"].size(), cj["spec"]["policy"].size());
  // mixed: per-layer bits from 2 and 8 within a model_bytes budget between all-2 and all-8.
  const double budget = 1.5 * sj["passes"][0]["model_bytes"].get<double>();
  const auto m = run("compress " + dir.file("c.yaml") + " --subnet smallest --method mixed --bits 2,8/8 --budget-bytes " +
                     std::to_string(int64_t(budget)) + " --json " + dir.file("m.json"));
  ASSERT_EQ(m.code, 0) << m.output;
  expect_contains(m.output, "mixed precision: model_bytes budget");
  const auto mj = nlohmann::json::parse(core::read_text_file(dir.file("m.json"), "json"));
  EXPECT_LE(mj["metrics"]["model_bytes"].get<double>(), budget);
  std::set<int> bits;
  for (const auto& [layer, p] : mj["spec"]["policy"].items()) bits.insert(p["weight_bits"].get<int>());
  EXPECT_EQ(bits, (std::set<int>{2, 8}));
  expect_contains(run("compress " + dir.file("c.yaml") + " --method mixed --bits 2,8/8").output,
                  "expected exactly one of --budget-bytes N or --budget-bops N");
  expect_contains(run("compress " + dir.file("c.yaml") + " --method mixed --bits 2,x/8 --budget-bytes 1").output,
                  "expected W[,W...][/A], e.g. 2,4,8/8");
}

TEST(Cli, ExportWritesAFolderOrNothing) {
  qnas::testing::TempDir dir("cli_export");
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.file("run"), 1));
  ASSERT_EQ(run("train " + dir.file("c.yaml")).code, 0);
  const std::string base = "export " + dir.file("c.yaml") + " --subnet smallest ";
  const auto ok = run(base + "--bits 8/8 --format onnx --out " + dir.file("out"));
  ASSERT_EQ(ok.code, 0) << ok.output;
  expect_contains(ok.output, "model.onnx");
  EXPECT_TRUE(core::file_exists(dir.file("out/spec.json")));
  // A spec of another space, an unsupported bit-width, an unknown format, an
  // occupied or unwritable folder: a clear error and no folder left behind.
  core::write_file_atomic(dir.file("bad_spec.json"),
                          R"({"supernet": "mbv3", "arch": {"s0.depth": 7}, "policy": {}})");
  const auto bad_spec = run("export " + dir.file("c.yaml") + " --subnet " + dir.file("bad_spec.json") +
                            " --format onnx --out " + dir.file("x1"));
  EXPECT_EQ(bad_spec.code, 1);
  expect_contains(bad_spec.output, "s0.depth");
  expect_contains(run(base + "--bits 8/4 --format onnx --out " + dir.file("x2")).output, "act_bits 4");
  expect_contains(run(base + "--format tflite --out " + dir.file("x3")).output,
                  "expected onnx, torchscript or safetensors");
  expect_contains(run(base + "--format onnx --out " + dir.file("out")).output, "exists and is not empty");
  expect_contains(run(base + "--format safetensors --out " + dir.file("c.yaml") + "/sub").output, "cannot");
  for (const char* name : {"x1", "x2", "x3"}) EXPECT_FALSE(core::file_exists(dir.file(name))) << name;
  for (const auto& f : std::filesystem::directory_iterator(dir.str()))
    EXPECT_EQ(f.path().filename().string().find(".tmp."), std::string::npos) << f.path();

  // A safetensors export scored without the supernet (its checkpoint moved
  // away) measures what `eval --deployed` measures on the same subnet.
  const auto ref = run("eval " + dir.file("c.yaml") + " --subnet smallest --bits 4/8 --deployed --no-latency --json " +
                       dir.file("ref.json"));
  ASSERT_EQ(ref.code, 0) << ref.output;
  ASSERT_EQ(run(base + "--bits 4/8 --format safetensors --out " + dir.file("st")).code, 0);
  std::filesystem::rename(dir.file("run/supernet.pt"), dir.file("supernet.pt.away"));
  const auto scored = run("eval " + dir.file("c.yaml") + " --model " + dir.file("st") + " --json " + dir.file("st.json"));
  ASSERT_EQ(scored.code, 0) << scored.output;
  expect_contains(scored.output, "latency_ms");
  const auto want = nlohmann::json::parse(core::read_text_file(dir.file("ref.json"), "json"));
  const auto got = nlohmann::json::parse(core::read_text_file(dir.file("st.json"), "json"));
  for (const char* metric : {"top1", "top1_deployed", "model_bytes"})
    EXPECT_DOUBLE_EQ(got["metrics"][metric].get<double>(), want["metrics"][metric].get<double>()) << metric;
  EXPECT_EQ(got["spec"], want["spec"]);
  // An export folder is outside input: a damaged one is a clear error, exit code 1.
  core::write_file_atomic(dir.file("st/model.safetensors"), "\xff\xff\xff\xff\xff\xff\xff\x7f{}");
  const auto damaged = run("eval " + dir.file("c.yaml") + " --model " + dir.file("st"));
  EXPECT_EQ(damaged.code, 1) << damaged.output;
  expect_contains(damaged.output, "st/model.safetensors': header length");
  expect_contains(run("eval " + dir.file("c.yaml") + " --model " + dir.file("st") + " --bits 8/8").output,
                  "--bits excludes --model");
}

namespace {

// evaluations.csv without its timing column.
std::string rows_without_timing(const std::string& path) {
  std::string out, line;
  std::ifstream in(path);
  while (std::getline(in, line)) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

int csv_lines(const std::string& path) {
  if (!core::file_exists(path)) return 0;
  const auto text = core::read_text_file(path, "csv");
  return int(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST(Cli, SearchTrainsFirstAndAKilledSearchResumesToTheSameRows) {
  qnas::testing::TempDir a("cli_search_full"), b("cli_search_killed");
  const std::string search =
      "search: {tactic: linas, objectives: {top1: max, model_bytes: min}, population: 4, evaluations: 14,"
      " inner_evaluations: 400, folds: 2, train_if_missing: true}\n";
  core::write_file_atomic(a.file("c.yaml"), tiny_yaml(a.file("run"), 1) + search);
  core::write_file_atomic(b.file("c.yaml"), tiny_yaml(b.file("run"), 1) + search);
  const auto full = run("search " + a.file("c.yaml"));
  ASSERT_EQ(full.code, 0) << full.output;
  expect_contains(full.output, "training the supernet first");
  expect_contains(full.output, "hypervolume");
  for (const char* f : {"evaluations.csv", "pareto.csv", "hypervolume.csv", "state.json", "predictors.csv",
                        "config.resolved.yaml", "supernet.pt"})
    EXPECT_TRUE(core::file_exists(a.file("run/") + f)) << f;
  EXPECT_EQ(csv_lines(a.file("run/evaluations.csv")), 15);

  // Same supernet, then SIGKILL in the middle of the search.
  std::filesystem::create_directories(b.file("run"));
  std::filesystem::copy_file(a.file("run/supernet.pt"), b.file("run/supernet.pt"));
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    freopen("/dev/null", "w", stdout);
    execl(QNAS_BINARY, QNAS_BINARY, "search", b.file("c.yaml").c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 1200 && csv_lines(b.file("run/evaluations.csv")) < 7; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_LT(csv_lines(b.file("run/evaluations.csv")), 15) << "the search finished before the kill";
  const auto again = run("search " + b.file("c.yaml"));
  EXPECT_NE(again.code, 0);
  expect_contains(again.output, "--resume");
  const auto resumed = run("search " + b.file("c.yaml") + " --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(rows_without_timing(b.file("run/evaluations.csv")), rows_without_timing(a.file("run/evaluations.csv")));

  // The tools for any results CSV.
  const auto pareto = run("pareto " + a.file("run/evaluations.csv") + " --objectives top1:max,model_bytes:min");
  ASSERT_EQ(pareto.code, 0) << pareto.output;
  expect_contains(pareto.output, "hypervolume");
  const auto predict = run("predict " + a.file("run/evaluations.csv") + " --objective model_bytes --folds 3");
  ASSERT_EQ(predict.code, 0) << predict.output;
  expect_contains(predict.output, "kendall_tau");
  expect_contains(predict.output, "auto keeps");
  const auto bad = run("pareto " + a.file("run/evaluations.csv") + " --objectives top5:max");
  EXPECT_NE(bad.code, 0);
  expect_contains(bad.output, "no column 'top5'");
}
