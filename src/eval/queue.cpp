#include "src/eval/queue.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

#include "src/core/error.hpp"

namespace qnas::eval {

namespace {
std::string pin_key(const std::string& queue_name, int rank) {
  return "pin/" + queue_name + "/" + std::to_string(rank);
}
}  // namespace

void measure_on_queue(core::TaskQueue& queue, const std::vector<supernet::SubnetSpec>& specs,
                      const std::function<void(size_t, Metrics, const core::TaskResult&)>& measured) {
  std::vector<std::string> tasks;
  for (const auto& spec : specs) tasks.push_back(supernet::to_json(spec).dump());
  queue.run(tasks, [&](size_t i, const core::TaskResult& r) {
    Metrics m;
    try {
      m = nlohmann::json::parse(r.value).get<Metrics>();
    } catch (const nlohmann::json::exception& e) {
      QNAS_THROW("worker rank ", r.worker, ": task ", i, " came back as no metrics (", e.what(), ")");
    }
    measured(i, std::move(m), r);
  });
}

void pin_and_report(const core::TaskQueue& queue, const core::World& world, const core::DistConfig& dist, int threads) {
  const std::string pinning = dist.pin_workers ? core::pin_worker(world, threads)
                                               : "rank " + std::to_string(world.rank()) + ": not pinned (dist.pin_workers: false)";
  world.store_set(pin_key(queue.name(), world.rank()), pinning);
}

void serve_measurements(core::TaskQueue& queue, const core::World& world, const core::DistConfig& dist, int threads,
                        const std::function<Metrics(const supernet::SubnetSpec&)>& measure) {
  pin_and_report(queue, world, dist, threads);
  queue.serve([&](const std::string& task) {
    const auto spec = supernet::spec_from_json(nlohmann::json::parse(task), "task from rank 0");
    return nlohmann::json(measure(spec)).dump();
  });
}

std::vector<std::string> worker_pinning(const core::World& world, const std::string& queue_name) {
  std::vector<std::string> out;
  for (int r = 1; r < world.size(); ++r) out.push_back(world.store_get(pin_key(queue_name, r)));
  return out;
}

std::string queue_report_json(const core::World& world, int threads, const std::vector<std::string>& pinning,
                              const core::QueueStats* stats) {
  nlohmann::json j = {{"world", world.describe()},
                      {"threads_per_rank", threads},
                      {"coordinator", "rank 0 on " + world.hosts()[0] + ": proposes, writes every file, measures nothing"},
                      {"latency_rule",
                       "each worker times its candidates against the all-INT8 reference it runs interleaved with "
                       "them (latency.reference); workers on one host run on their own cores when pinned"},
                      {"workers", pinning}};
  if (stats) {
    nlohmann::json by_worker = nlohmann::json::object();
    for (const auto& [rank, n] : stats->tasks_by_worker)
      by_worker[std::to_string(rank)] = {{"tasks", n}, {"seconds", std::round(stats->seconds_by_worker.at(rank) * 1e3) / 1e3}};
    j["tasks"] = stats->tasks;
    j["posted_again"] = stats->reposted;
    j["by_worker"] = by_worker;
  }
  return j.dump(1) + "\n";
}

}  // namespace qnas::eval
