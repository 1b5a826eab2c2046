#pragma once
// A dynamic work queue over the job's store (core/world.hpp): rank 0 posts
// tasks (opaque strings, e.g. a subnet spec's JSON) and every other rank
// takes the next one as soon as it is free, so a fast worker is never held
// by a slow one. Results come back to rank 0 in task order.
//
// Keys, under "queue/<name>/" in the store:
//   claim             counter: a worker takes ticket t = claim++ and writes
//   who/t             its rank, then waits for
//   task/t            posted by rank 0: "T" + payload, or "S" (stop)
//   result/t          "R" seconds "\n" result, or "E" + the error message
//   done, finished/k  k-th result's ticket (rank 0 reads results in order)
//   cancel/t          another ticket of the same task finished first
//   beat/<rank>       heartbeat counter, bumped by a thread of each worker
//   left              workers that stopped
//
// A task whose worker stops beating for dist.worker_timeout_s (killed), or
// runs past the task timeout (hung), is posted again under a new ticket; the
// first result wins and later ones are dropped. The run goes on with the
// workers that are left.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/core/config.hpp"
#include "src/core/world.hpp"

namespace qnas::core {

struct TaskResult {
  std::string value;
  int worker = -1;       // rank that computed it
  double seconds = 0;    // the worker's time on it
  int attempts = 1;      // tickets the task was posted under
};

struct QueueStats {
  int tasks = 0, reposted = 0;
  std::map<int, int> tasks_by_worker;
  std::map<int, double> seconds_by_worker;
};

class TaskQueue {
 public:
  /// Rank 0 coordinates, every other rank is a worker. Throws in a world of one.
  TaskQueue(std::shared_ptr<const World> world, const DistConfig& dist, std::string name);
  /// Rank 0: close() (errors are swallowed: a destructor during an exception).
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  /// Rank 0: runs every task on the workers. `on_result(i, r)` is called for
  /// each task in order of i, as soon as it and every earlier one finished.
  /// Throws a worker's error naming its rank, and when no worker is left.
  void run(const std::vector<std::string>& tasks, const std::function<void(size_t, const TaskResult&)>& on_result);
  /// Rank 0: tells the workers to stop and waits until the live ones have
  /// (at most dist.worker_timeout_s).
  void close();

  /// Workers: runs `handler` on each task taken until rank 0 closes the
  /// queue; an exception becomes the task's error on rank 0. Throws when
  /// rank 0 goes away.
  void serve(const std::function<std::string(const std::string&)>& handler);

  int workers() const;
  const std::string& name() const { return name_; }
  const QueueStats& stats() const { return stats_; }

 private:
  struct Coordinator;
  std::string key(const std::string& k) const { return prefix_ + k; }
  int64_t post(const std::string& payload);

  std::shared_ptr<const World> world_;
  DistConfig dist_;
  std::string name_, prefix_;
  int64_t posted_ = 0;
  bool closed_ = false;
  QueueStats stats_;
  std::unique_ptr<Coordinator> coord_;
};

/// The workers of a queue on one host share its cores: pins this worker's
/// threads to its own `threads` cores (the index among the workers on this
/// host, rank 0 excluded, picks them) and says how, for the run's files.
/// Refuses nothing: when the cores do not go round, nothing is pinned and
/// the text says so.
std::string pin_worker(const World& world, int threads);

}  // namespace qnas::core
