// `qnas train` as several processes, started the way torchrun and mpirun
// start them (their environment variables; loopback only): one data-parallel
// step close to one process's step on the whole batch, a resume with another
// number of ranks, and joins that fail with clear errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <thread>

#include "src/core/fs.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"
#include "tests/e2e/cli_util.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_contains;
using qnas::testing::run;
using qnas::testing::RunResult;
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
// whole batch's exactly; it must be far closer to it than to no step.
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
