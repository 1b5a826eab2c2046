// The processes of one job (core/world.hpp): the launchers' variables, two
// ranks joined over loopback (in threads of this process), all-reduce
// averaging equal to the whole batch's gradient, and a store that cannot be
// reached failing in time, naming its address.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "src/core/runtime.hpp"
#include "src/core/task_queue.hpp"
#include "src/core/world.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_error;

namespace {

using Env = std::map<std::string, std::string>;

core::Placement placement(const Env& env, const core::DistConfig& dist = {}) {
  return core::placement_from_env(dist, [&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// A loopback port nobody listens on (bound, read, closed).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

core::Placement rank_of(int rank, int size, int port) {
  core::Placement p;
  p.launcher = "torchrun";
  p.rank = p.local_rank = rank;
  p.size = p.local_size = size;
  p.master_port = port;
  return p;
}

core::DistConfig quick(double connect_timeout_s = 20) {
  core::DistConfig d;
  d.connect_timeout_s = connect_timeout_s;
  d.timeout_s = 20;
  return d;
}

// Runs body(world) on ranks 0..n-1, each in its own thread; their errors.
std::vector<std::string> run_ranks(int n, const std::function<void(std::shared_ptr<core::World>)>& body,
                                   const core::DistConfig& dist = quick()) {
  const int port = free_port();
  std::vector<std::thread> ranks;
  std::vector<std::string> errors(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r)
    ranks.emplace_back([&, r] {
      try {
        body(std::make_shared<core::World>(rank_of(r, n, port), dist));
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  return errors;
}

void on_two_ranks(const std::function<void(const core::World&)>& body) {
  const auto errors = run_ranks(2, [&](std::shared_ptr<core::World> world) { body(*world); });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

}  // namespace

TEST(World, TorchrunAndOpenMpiVariablesArePlacements) {
  const auto none = placement({});
  EXPECT_EQ(none.launcher, "none");
  EXPECT_EQ(none.size, 1);
  const auto torchrun = placement({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                   {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "29611"}});
  EXPECT_EQ(torchrun.launcher, "torchrun");
  EXPECT_EQ(torchrun.rank, 3);
  EXPECT_EQ(torchrun.size, 4);
  EXPECT_EQ(torchrun.local_rank, 1);
  EXPECT_EQ(torchrun.local_size, 2);
  EXPECT_EQ(torchrun.master_addr, "10.0.0.7");
  EXPECT_EQ(torchrun.master_port, 29611);
  EXPECT_FALSE(torchrun.agent_store);
  EXPECT_TRUE(placement({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}}).agent_store);
  core::DistConfig dist;
  dist.master_port = 29777;
  const auto mpi = placement({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "3"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "3"}}, dist);
  EXPECT_EQ(mpi.launcher, "mpirun");
  EXPECT_EQ(mpi.rank, 1);
  EXPECT_EQ(mpi.size, 3);
  EXPECT_EQ(mpi.local_size, 3);
  EXPECT_EQ(mpi.master_addr, "127.0.0.1");  // one host unless told
  EXPECT_EQ(mpi.master_port, 29777);        // from dist.master_port
  dist.master_addr = "node0";
  EXPECT_EQ(placement({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "0"}}, dist).master_addr, "node0");
}

TEST(World, MalformedLauncherVariablesAreNamed) {
  expect_error([] { placement({{"RANK", "0"}, {"WORLD_SIZE", "two"}}); }, {"WORLD_SIZE='two'", "integer"});
  expect_error([] { placement({{"RANK", "2"}, {"WORLD_SIZE", "2"}}); }, {"torchrun", "rank 2 of 2"});
  expect_error([] { placement({{"RANK", "0"}}); }, {"RANK and WORLD_SIZE", "together"});
  expect_error([] { placement({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "0"},
                               {"OMPI_COMM_WORLD_LOCAL_SIZE", "3"}}); },
               {"mpirun", "local rank 0 of 3", "local size <= world size"});
  expect_error([] { placement({{"MASTER_PORT", "70000"}}); }, {"MASTER_PORT=70000", "1..65535"});
}

TEST(World, OneProcessIsAWorldOfOne) {
  core::World world;
  EXPECT_EQ(world.size(), 1);
  EXPECT_TRUE(world.coordinator());
  auto t = at::ones({3});
  world.allreduce_sum({t});  // nothing to add
  EXPECT_TRUE(t.equal(at::ones({3})));
  EXPECT_EQ(world.broadcast_bytes("k", "abc"), "abc");
  EXPECT_NE(world.describe().find("1 rank on 1 host"), std::string::npos) << world.describe();
}

// Each rank takes half of a batch; the mean of their gradients is the
// gradient of the whole batch (a net without BN: equal up to float rounding).
TEST(World, AllReduceAveragingGivesTheWholeBatchGradient) {
  at::manual_seed(3);
  const auto w0 = at::randn({3, 6}), b0 = at::randn({3});
  const auto x = at::randn({8, 6}), target = at::randn({8, 3});
  const auto gradients = [&](const at::Tensor& xs, const at::Tensor& ts) {
    auto w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    at::mse_loss(at::addmm(b, xs, w.t()), ts).backward();
    return std::vector<at::Tensor>{w.grad().clone(), b.grad().clone()};
  };
  const auto whole = gradients(x, target);
  std::vector<std::vector<at::Tensor>> averaged(2);
  on_two_ranks([&](const core::World& world) {
    auto g = gradients(x.narrow(0, 4 * world.rank(), 4), target.narrow(0, 4 * world.rank(), 4));
    world.allreduce_sum(g, /*bucket_bytes=*/16);  // several buckets
    for (auto& t : g) t.div_(world.size());
    averaged[size_t(world.rank())] = g;
  });
  for (int r = 0; r < 2; ++r)
    for (size_t i = 0; i < whole.size(); ++i) {
      ASSERT_TRUE(averaged[size_t(r)][i].defined());
      EXPECT_TRUE(at::allclose(averaged[size_t(r)][i], whole[i], 1e-6, 1e-7)) << "rank " << r << " tensor " << i;
    }
  EXPECT_TRUE(averaged[0][0].equal(averaged[1][0]));  // every rank steps with the same numbers
}

TEST(World, BroadcastsTensorsAndBytesAndNamesItsHosts) {
  on_two_ranks([](const core::World& world) {
    auto t = at::full({4}, double(world.rank() + 5), at::kFloat);
    auto n = at::full({2}, int64_t(world.rank() + 1), at::kLong);
    world.broadcast({t, n});
    EXPECT_TRUE(t.equal(at::full({4}, 5.0, at::kFloat)));
    EXPECT_TRUE(n.equal(at::full({2}, int64_t(1), at::kLong)));
    const std::string got = world.broadcast_bytes("blob", world.coordinator() ? std::string("\0rank0", 6) : "");
    EXPECT_EQ(got, std::string("\0rank0", 6));
    world.barrier();
    EXPECT_EQ(world.hosts().size(), 2u);
    EXPECT_NE(world.describe().find("2 ranks (torchrun) on 1 host"), std::string::npos) << world.describe();
  });
}

TEST(World, AnUnreachableStoreFailsInTimeNamingItsAddress) {
  const int port = free_port();
  const auto start = std::chrono::steady_clock::now();
  expect_error([&] { core::World world(rank_of(1, 2, port), quick(/*connect_timeout_s=*/1.0)); },
               {"rank 1 of 2", "could not reach", "127.0.0.1:" + std::to_string(port), "dist.connect_timeout_s"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 15.0);
}

TEST(World, RanksTimesThreadsAboveTheCoresIsRefused) {
  core::Config cfg;
  cfg.threads = 1;
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  expect_error([&] { core::init_runtime(cfg, cores + 1); }, {"threads", "ranks on this host", "dist.oversubscribe"});
  cfg.dist.oversubscribe = true;
  EXPECT_EQ(core::init_runtime(cfg, cores + 1), 1);
  cfg.threads = 0;  // the cores shared among the ranks
  EXPECT_EQ(core::init_runtime(cfg, 2), std::max(1, cores / 2));
}

// --- The task queue (core/task_queue.hpp) ---------------------------------------------

namespace {
// Squares the number in each task, after `pause_ms` per unit of it.
std::string square(const std::string& task, int pause_ms) {
  const int x = std::stoi(task);
  std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms * x));
  return std::to_string(x * x);
}
}  // namespace

// Three workers of unequal speed: every task once, results in task order,
// the fast worker takes more of them (a dynamic queue, not a static split).
TEST(TaskQueue, WorkersTakeTasksAsTheyAreFreeAndResultsComeInOrder) {
  std::vector<std::string> got;
  std::vector<int> workers;
  core::QueueStats stats;
  const auto errors = run_ranks(4, [&](std::shared_ptr<core::World> world) {
    core::TaskQueue queue(world, quick(), "t");
    if (!world->coordinator()) {
      const int pause_ms = world->rank() == 1 ? 0 : 5;
      return queue.serve([&](const std::string& task) { return square(task, pause_ms); });
    }
    for (int batch = 0; batch < 2; ++batch) {  // two batches: tickets keep counting
      std::vector<std::string> tasks;
      for (int i = 0; i < 12; ++i) tasks.push_back(std::to_string(i % 6 + 1));
      size_t expected = 0;
      queue.run(tasks, [&](size_t i, const core::TaskResult& r) {
        EXPECT_EQ(i, expected++);
        got.push_back(r.value);
        workers.push_back(r.worker);
      });
    }
    queue.close();
    stats = queue.stats();
  });
  for (const auto& e : errors) EXPECT_EQ(e, "");
  ASSERT_EQ(got.size(), 24u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], std::to_string((i % 6 + 1) * (i % 6 + 1)));
  EXPECT_EQ(stats.tasks, 24);
  EXPECT_EQ(stats.reposted, 0);
  EXPECT_GT(stats.tasks_by_worker[1], stats.tasks_by_worker[2]) << "the fast worker should take more tasks";
}

// A worker that took a ticket and died before its first heartbeat (its
// claim written by hand here): its task goes to another worker after
// dist.worker_timeout_s; an error in a task reaches rank 0 naming the rank.
TEST(TaskQueue, ATaskOfADeadWorkerGoesToAnotherAndErrorsNameTheWorker) {
  auto dist = quick();
  dist.worker_timeout_s = 1;
  std::vector<std::string> got;
  core::QueueStats stats;
  std::string error;
  const auto errors = run_ranks(3, [&](std::shared_ptr<core::World> world) {
    core::TaskQueue queue(world, dist, "t");
    if (world->rank() == 2) {  // dies holding ticket 0
      world->store_add("queue/t/claim", 1);
      world->store_set("queue/t/who/0", "2");
      return;
    }
    if (world->rank() == 1) {
      while (!world->store_has("queue/t/who/0")) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return queue.serve([&](const std::string& task) {
        if (task == "bad") throw std::runtime_error("no such task");
        return square(task, 0);
      });
    }
    queue.run({"3", "4", "5"}, [&](size_t, const core::TaskResult& r) { got.push_back(r.value); });
    stats = queue.stats();
    try {
      queue.run({"bad"}, [](size_t, const core::TaskResult&) {});
    } catch (const std::exception& e) {
      error = e.what();
    }
  }, dist);
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(got, (std::vector<std::string>{"9", "16", "25"}));
  EXPECT_EQ(stats.reposted, 1);
  EXPECT_EQ(stats.tasks_by_worker[1], 3);
  EXPECT_NE(error.find("worker rank 1"), std::string::npos) << error;
  EXPECT_NE(error.find("no such task"), std::string::npos) << error;
}
