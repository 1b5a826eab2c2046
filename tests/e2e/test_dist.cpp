// `qnas train` as several processes, started the way torchrun and mpirun
// start them (their environment variables; loopback only): one data-parallel
// step close to one process's step on the whole batch, a resume with another
// number of ranks, and joins that fail with clear errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/core/fs.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"
#include "tests/e2e/cli_util.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_contains;
using qnas::testing::run;
using qnas::testing::RunResult;
using qnas::testing::spawn;
using qnas::testing::wait_exit;
using qnas::testing::TempDir;
using qnas::testing::tiny_yaml;

namespace {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// The variables `launcher` (torchrun | mpirun) gives rank r of n on one host.
std::string launcher_env(const std::string& launcher, int r, int n, int port) {
  const std::string rank = std::to_string(r), size = std::to_string(n);
  const std::string master = " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port);
  if (launcher == "torchrun")
    return "RANK=" + rank + " WORLD_SIZE=" + size + " LOCAL_RANK=" + rank + " LOCAL_WORLD_SIZE=" + size + master;
  return "OMPI_COMM_WORLD_RANK=" + rank + " OMPI_COMM_WORLD_SIZE=" + size + " OMPI_COMM_WORLD_LOCAL_RANK=" + rank +
         " OMPI_COMM_WORLD_LOCAL_SIZE=" + size + master;
}

// Starts `qnas args` as n ranks at once; each rank's result.
std::vector<RunResult> run_ranks(const std::string& launcher, int n, const std::string& args) {
  const int port = free_port();
  std::vector<RunResult> results(static_cast<size_t>(n));
  std::vector<std::thread> ranks;
  for (int r = 0; r < n; ++r)
    ranks.emplace_back([&, r] { results[size_t(r)] = run(args, launcher_env(launcher, r, n, port)); });
  for (auto& t : ranks) t.join();
  return results;
}

// Starts `qnas args` as n ranks in the background; their pids (rank order)
// and logs (<log_prefix><rank>.log).
std::vector<pid_t> spawn_ranks(const std::string& launcher, int n, const std::string& args, const std::string& log_prefix) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r)
    pids.push_back(spawn(args, launcher_env(launcher, r, n, port), log_prefix + std::to_string(r) + ".log"));
  return pids;
}

// One column of a CSV qnas wrote, row by row.
std::vector<std::string> csv_column(const std::string& path, const std::string& name) {
  std::istringstream in(core::read_text_file(path, "csv"));
  std::string line;
  std::getline(in, line);
  const auto header = core::csv_split(line);
  const size_t k = size_t(std::find(header.begin(), header.end(), name) - header.begin());
  EXPECT_LT(k, header.size()) << path << " has no column " << name;
  std::vector<std::string> out;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(core::csv_split(line).at(k));
  return out;
}

size_t csv_rows(const std::string& path) {
  return std::filesystem::exists(path) ? csv_column(path, "id").size() : 0;
}

// Waits (at most a minute) until `path` holds `rows` rows.
void wait_for_rows(const std::string& path, size_t rows) {
  for (int i = 0; i < 600 && csv_rows(path) < rows; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// The tiny supernet trained once into <dir>/run, its checkpoint copied into
// each of `runs`; the config (search section appended) in <dir>/c.yaml.
void trained_runs(const TempDir& dir, const std::string& search, const std::vector<std::string>& runs) {
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.file("run"), 1) + search);
  ASSERT_EQ(run("train " + dir.file("c.yaml")).code, 0);
  for (const auto& r : runs) {
    std::filesystem::create_directories(dir.file(r));
    std::filesystem::copy_file(supernet::checkpoint_path(dir.file("run")), supernet::checkpoint_path(dir.file(r)));
  }
}

std::vector<at::Tensor> weights(const core::Config& cfg, const std::string& checkpoint) {
  const auto session = eval::open_session(cfg, checkpoint);
  std::vector<at::Tensor> out;
  for (const auto& p : session.net->parameters()) out.push_back(p.detach().clone());
  return out;
}

double distance(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double sq = 0;
  for (size_t i = 0; i < a.size(); ++i) sq += (a[i] - b[i]).pow(2).sum().item<double>();
  return std::sqrt(sq);
}

}  // namespace

// One step on a batch of 50: two ranks of 25 average their gradients. BN
// normalises each shard with its own statistics, so the step is not the
// whole batch's exactly; it must be far closer to it than to no step. With
// synchronised BN it is the whole batch's step.
TEST(Dist, TwoRanksStepCloseToOneProcessOnTheWholeBatch) {
  TempDir dir("dist_step");
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.file("one"), 1));
  const std::string one_step = " --set data.train_subset=350 --set data.val_size=300 --set train.eval_every=0";
  const auto single = run("train " + dir.file("c.yaml") + one_step);
  ASSERT_EQ(single.code, 0) << single.output;
  const auto ranks = run_ranks("torchrun", 2, "train " + dir.file("c.yaml") + one_step + " --set output.dir=" + dir.file("two"));
  ASSERT_EQ(ranks[0].code, 0) << ranks[0].output;
  ASSERT_EQ(ranks[1].code, 0) << ranks[1].output;
  expect_contains(ranks[0].output, "2 ranks (torchrun) on 1 host");
  expect_contains(ranks[0].output, "checkpoint");  // rank 0 reports
  EXPECT_EQ(ranks[1].output.find("checkpoint"), std::string::npos) << ranks[1].output;  // the others stay quiet

  auto cfg = core::load_config(dir.file("c.yaml"), {"data.train_subset=350", "data.val_size=300"});
  const auto init = weights(cfg, "");
  const auto w1 = weights(cfg, supernet::checkpoint_path(dir.file("one")));
  const auto w2 = weights(cfg, supernet::checkpoint_path(dir.file("two")));
  const double step = distance(w1, init), apart = distance(w1, w2);
  EXPECT_GT(step, 0.0);
  EXPECT_LT(apart, 0.25 * step) << "step " << step << ", two ranks vs one " << apart;
  // With train.sync_bn the two ranks normalise with the whole batch's
  // statistics: the step is one process's up to float summation order.
  const auto synced = run_ranks("torchrun", 2, "train " + dir.file("c.yaml") + one_step + " --set train.sync_bn=true "
                                "--set output.dir=" + dir.file("sync"));
  ASSERT_EQ(synced[0].code, 0) << synced[0].output;
  const double apart_synced = distance(w1, weights(cfg, supernet::checkpoint_path(dir.file("sync"))));
  EXPECT_LT(apart_synced, 1e-3 * step) << "step " << step << ", synchronised BN two ranks vs one " << apart_synced;
}

// mpirun's variables: two ranks learn as one process does; one process
// resumes their run for a third epoch (another number of ranks).
TEST(Dist, MpirunRanksTrainAndOneProcessResumes) {
  TempDir dir("dist_resume");
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.file("run"), 2));
  const auto ranks = run_ranks("mpirun", 2, "train " + dir.file("c.yaml"));
  ASSERT_EQ(ranks[0].code, 0) << ranks[0].output;
  ASSERT_EQ(ranks[1].code, 0) << ranks[1].output;
  expect_contains(ranks[0].output, "2 ranks (mpirun) on 1 host");
  const auto val_top1 = [&](const std::string& run_dir, int epoch) {  // val_top1_largest of the epoch's log row
    std::istringstream log(core::read_text_file(dir.file(run_dir + "/train_log.csv"), "log"));
    std::string line;
    for (int row = 0; row <= epoch; ++row) std::getline(log, line);
    return std::stod(core::csv_split(line).at(6));
  };
  ASSERT_EQ(run("train " + dir.file("c.yaml") + " --set output.dir=" + dir.file("one")).code, 0);
  EXPECT_GT(val_top1("run", 2), 30.0);  // chance: 10 %
  EXPECT_NEAR(val_top1("run", 2), val_top1("one", 2), 8.0);  // one process on the whole batches
  const auto resumed = run("train " + dir.file("c.yaml") + " --resume --set train.epochs=3");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  expect_contains(resumed.output, "resuming from " + supernet::checkpoint_path(dir.file("run")) + " after epoch 2");
  EXPECT_GT(val_top1("run", 3), val_top1("run", 2) - 5.0);
}

TEST(Dist, JoinsThatCannotWorkAreClearErrors) {
  TempDir dir("dist_bad");
  core::write_file_atomic(dir.file("c.yaml"), tiny_yaml(dir.file("run"), 1));
  // Rank 1 alone: nobody serves the store.
  const int port = free_port();
  const auto start = std::chrono::steady_clock::now();
  const auto lonely = run("train " + dir.file("c.yaml") + " --set dist.connect_timeout_s=1",
                          launcher_env("torchrun", 1, 2, port));
  EXPECT_EQ(lonely.code, 1);
  expect_contains(lonely.output, "could not reach the store at 127.0.0.1:" + std::to_string(port));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20.0);
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
  // A batch that two ranks cannot share equally.
  const auto odd = run_ranks("torchrun", 2, "train " + dir.file("c.yaml") + " --set train.batch_size=49");
  EXPECT_EQ(odd[0].code, 1);
  expect_contains(odd[0].output, "train.batch_size: 49 images cannot be shared equally by 2 ranks");
  // Commands that run as one process say so.
  const auto search = run_ranks("torchrun", 2, "info " + dir.file("c.yaml"));
  EXPECT_EQ(search[1].code, 1);
  expect_contains(search[1].output, "qnas info runs as one process");
}

// A random search validated by two workers (and a coordinator), killed as a
// whole job midway and resumed, gives the rows one process gives: the same
// specs, in the same order, with the same top-1.
TEST(Dist, SearchOnWorkersValidatesWhatOneProcessDoesAndResumes) {
  TempDir dir("dist_search");
  trained_runs(dir, "search: {tactic: random, objectives: {top1: max, model_bytes: min}, population: 8, evaluations: 16,"
                    " val_images: 300}\n", {"one", "three"});
  const std::string cfg = dir.file("c.yaml");
  const auto one = run("search " + cfg + " --set output.dir=" + dir.file("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  const std::string three = "search " + cfg + " --set output.dir=" + dir.file("three");
  auto pids = spawn_ranks("torchrun", 3, three, dir.file("killed"));
  wait_for_rows(dir.file("three/evaluations.csv"), 5);
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) wait_exit(pid);
  const auto resumed = run_ranks("torchrun", 3, three + " --resume");
  ASSERT_EQ(resumed[0].code, 0) << resumed[0].output;
  EXPECT_EQ(resumed[1].code, 0) << resumed[1].output;
  expect_contains(resumed[0].output, "2 workers validated");
  for (const char* column : {"id", "iteration", "spec_json", "top1", "model_bytes"})
    EXPECT_EQ(csv_column(dir.file("three/evaluations.csv"), column), csv_column(dir.file("one/evaluations.csv"), column))
        << column;
  const auto report = nlohmann::json::parse(core::read_text_file(dir.file("three/dist.json"), "dist.json"));
  EXPECT_EQ(report.at("workers").size(), 2u);
  expect_contains(report.at("workers").at(0).get<std::string>(), "rank 1");
}

// Three workers, one killed (SIGKILL) while the batch is being validated:
// its candidate goes to another worker, the search finishes, and
// evaluations.csv holds every candidate once.
TEST(Dist, SearchSurvivesAKilledWorker) {
  TempDir dir("dist_kill");
  trained_runs(dir, "search: {tactic: random, objectives: {top1: max, latency_ms: min}, population: 24, evaluations: 24,"
                    " val_images: 300}\nlatency: {runs: 200, warmup: 2}\n"
                    "dist: {worker_timeout_s: 2, oversubscribe: true}\n", {});
  auto pids = spawn_ranks("mpirun", 4, "search " + dir.file("c.yaml"), dir.file("rank"));
  const std::string csv = dir.file("run/evaluations.csv");
  wait_for_rows(csv, 3);
  kill(pids[2], SIGKILL);
  EXPECT_EQ(wait_exit(pids[2]), -1);
  EXPECT_EQ(wait_exit(pids[0]), 0) << core::read_text_file(dir.file("rank0.log"), "log");
  EXPECT_EQ(wait_exit(pids[1]), 0) << core::read_text_file(dir.file("rank1.log"), "log");
  EXPECT_EQ(wait_exit(pids[3]), 0) << core::read_text_file(dir.file("rank3.log"), "log");
  const auto ids = csv_column(csv, "id"), specs = csv_column(csv, "spec_json");
  ASSERT_EQ(ids.size(), 24u);
  EXPECT_EQ(std::set<std::string>(specs.begin(), specs.end()).size(), 24u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], std::to_string(i));
  const auto report = nlohmann::json::parse(core::read_text_file(dir.file("run/dist.json"), "dist.json"));
  EXPECT_EQ(report.at("tasks").get<int>(), 24);
  // The killed worker's candidate (unless the kill fell between two of its
  // tasks) was posted again; a live worker counted dead under heavy load
  // would only add copies, whose results are dropped.
  const std::string log = core::read_text_file(dir.file("rank0.log"), "log");
  if (report.at("posted_again").get<int>() > 0) expect_contains(log, "sent no heartbeat");
}

// `qnas recipe` and `qnas sensitivity --check` on a coordinator and two
// workers: every recipe's row and every layer's drop as one process has
// them (latency aside: timed by other processes).
TEST(Dist, RecipeAndSensitivityCheckRunOnWorkers) {
  TempDir dir("dist_recipe");
  trained_runs(dir, "", {});
  const std::string cfg = dir.file("c.yaml");
  const std::string recipe = "recipe " + cfg + " --subnet smallest --images 300 --observers minmax,percentile "
                             "--alphas none,0.5 --json ";
  ASSERT_EQ(run(recipe + dir.file("r1.json")).code, 0);
  const auto recipes = run_ranks("torchrun", 3, recipe + dir.file("r3.json"));
  ASSERT_EQ(recipes[0].code, 0) << recipes[0].output;
  expect_contains(recipes[0].output, "recipe: worker rank 2");
  const auto r1 = nlohmann::json::parse(core::read_text_file(dir.file("r1.json"), "json"));
  const auto r3 = nlohmann::json::parse(core::read_text_file(dir.file("r3.json"), "json"));
  ASSERT_EQ(r1.at("rows").size(), r3.at("rows").size());
  EXPECT_GE(r1.at("rows").size(), 4u);
  for (size_t i = 0; i < r1.at("rows").size(); ++i)
    for (const char* field : {"acts", "observer", "alpha", "ok", "top1", "model_bytes", "smoothed"})
      EXPECT_EQ(r1["rows"][i][field], r3["rows"][i][field]) << "row " << i << " " << field;

  const std::string check = "sensitivity " + cfg + " --subnet smallest --bits 2/8 --check --check-images 300 --json ";
  ASSERT_EQ(run(check + dir.file("s1.json")).code, 0);
  const auto checks = run_ranks("mpirun", 3, check + dir.file("s3.json"));
  ASSERT_EQ(checks[0].code, 0) << checks[0].output;
  EXPECT_EQ(checks[2].code, 0) << checks[2].output;
  const auto s1 = nlohmann::json::parse(core::read_text_file(dir.file("s1.json"), "json"));
  const auto s3 = nlohmann::json::parse(core::read_text_file(dir.file("s3.json"), "json"));
  EXPECT_EQ(s1.at("check"), s3.at("check"));
  const auto& l1 = s1.at("passes").at(0).at("layers");
  const auto& l3 = s3.at("passes").at(0).at("layers");
  ASSERT_EQ(l1.size(), l3.size());
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_EQ(l1[i].at("top1_drop"), l3[i].at("top1_drop")) << i;
  // Without --check the command runs as one process.
  const auto refused = run_ranks("torchrun", 2, "sensitivity " + cfg + " --subnet smallest --bits 2/8");
  expect_contains(refused[1].output, "runs as one process");
}
