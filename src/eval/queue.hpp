#pragma once
// Subnet measurements on a task queue (core/task_queue.hpp): rank 0 posts
// specs, the workers measure them and send their metrics back. The long
// commands that measure many subnets (search, recipe, sensitivity --check)
// share this when launched as several processes.

#include <functional>
#include <string>
#include <vector>

#include "src/core/task_queue.hpp"
#include "src/eval/metrics.hpp"
#include "supernet/space.hpp"

namespace qnas::eval {

/// Rank 0: measures every spec on the workers; `measured(i, metrics, r)` is
/// called in order of i (r: who measured it and in how long).
void measure_on_queue(core::TaskQueue& queue, const std::vector<supernet::SubnetSpec>& specs,
                      const std::function<void(size_t, Metrics, const core::TaskResult&)>& measured);

/// Workers: pins this process when config dist.pin_workers says so and
/// tells rank 0 how (worker_pinning there).
void pin_and_report(const core::TaskQueue& queue, const core::World& world, const core::DistConfig& dist, int threads);

/// Workers: pin_and_report, then runs `measure` on every spec rank 0 posts
/// until it closes the queue.
void serve_measurements(core::TaskQueue& queue, const core::World& world, const core::DistConfig& dist, int threads,
                        const std::function<Metrics(const supernet::SubnetSpec&)>& measure);

/// Rank 0: each worker's pinning as it reported it, by rank (waits for each).
std::vector<std::string> worker_pinning(const core::World& world, const std::string& queue_name);

/// Rank 0: the run file that says how a queue ran (dist.json): the world,
/// threads per rank, each worker's pinning and, when given, its tasks.
std::string queue_report_json(const core::World& world, int threads, const std::vector<std::string>& pinning,
                              const core::QueueStats* stats = nullptr);

}  // namespace qnas::eval
