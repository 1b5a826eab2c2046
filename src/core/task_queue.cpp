#include "src/core/task_queue.hpp"

#include <dirent.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "src/core/error.hpp"

namespace qnas::core {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Polling with a growing pause: quick hand-offs while tasks flow, little
// load on the store while a worker waits through the coordinator's work.
class Backoff {
 public:
  void reset() { pause_ms_ = 1; }
  void wait() {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms_));
    pause_ms_ = std::min(pause_ms_ * 2, 40);
  }

 private:
  int pause_ms_ = 1;
};

// Bumps beat/<rank> from its own thread while the worker computes.
class Heartbeat {
 public:
  Heartbeat(const World& world, const std::string& key, double period_s) : thread_([&world, key, period_s, this] {
      std::unique_lock<std::mutex> lock(mutex_);
      do {
        try {
          world.store_add(key, 1);
        } catch (const std::exception&) {
          return;  // the coordinator is gone; serve() reports it
        }
      } while (!stop_cv_.wait_for(lock, std::chrono::duration<double>(period_s), [this] { return stop_; }));
    }) {}
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

// Rank 0's view of the workers and of the tasks in flight.
struct TaskQueue::Coordinator {
  struct Worker {
    int64_t beats = -1;
    Clock::time_point changed;
    bool seen = false;
  };
  struct Ticket {
    size_t task = 0;
    Clock::time_point posted, started;
    int owner = -1;
    bool replaced = false;  // posted again: kept so that a late result is recognised and dropped
  };
  std::map<int, Worker> workers;
  std::map<int64_t, Ticket> tickets;  // posted, no result yet
  int64_t results_read = 0;
  Clock::time_point start = Clock::now(), last_alive = Clock::now(), last_supervised;
  std::vector<double> finished_seconds;

  // Reads every worker's heartbeat; returns how many beat within `timeout_s`
  // and, in `unseen`, how many never beat yet.
  int refresh(const World& world, const std::string& prefix, double timeout_s, int* unseen = nullptr) {
    const auto now = Clock::now();
    int alive = 0, never = 0;
    for (auto& [rank, w] : workers) {
      const int64_t beats = world.store_add(prefix + "beat/" + std::to_string(rank), 0);
      if (beats != w.beats) w.beats = beats, w.changed = now, w.seen = w.seen || beats > 0;
      alive += w.seen && seconds_between(w.changed, now) < timeout_s;
      never += !w.seen;
    }
    if (unseen) *unseen = never;
    if (alive > 0) last_alive = now;
    return alive;
  }
  bool dead(int rank, double timeout_s) const {
    return seconds_between(workers.at(rank).changed, Clock::now()) >= timeout_s;
  }
};

TaskQueue::TaskQueue(std::shared_ptr<const World> world, const DistConfig& dist, std::string name)
    : world_(std::move(world)), dist_(dist), name_(name), prefix_("queue/" + name + "/") {
  QNAS_CHECK(world_ && world_->size() > 1, "task queue '", name, "': needs a world of several processes");
  if (world_->coordinator()) {
    coord_ = std::make_unique<Coordinator>();
    for (int r = 1; r < world_->size(); ++r) coord_->workers[r].changed = coord_->start;
  }
}

TaskQueue::~TaskQueue() {
  if (!coord_) return;
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "queue: closing: %s\n", e.what());
  }
}

int TaskQueue::workers() const { return world_->size() - 1; }

int64_t TaskQueue::post(const std::string& payload) {
  const int64_t t = posted_++;
  world_->store_set(key("task/" + std::to_string(t)), payload);
  return t;
}

namespace {

double task_timeout(const DistConfig& dist, std::vector<double> finished) {
  if (dist.task_timeout_s > 0) return dist.task_timeout_s;
  if (finished.empty()) return 3600;
  std::nth_element(finished.begin(), finished.begin() + long(finished.size() / 2), finished.end());
  return std::max(60.0, 20 * finished[finished.size() / 2]);
}

}  // namespace

void TaskQueue::run(const std::vector<std::string>& tasks,
                    const std::function<void(size_t, const TaskResult&)>& on_result) {
  QNAS_CHECK(coord_, "task queue: run() is rank 0's");
  QNAS_CHECK(!closed_, "task queue: run() after close()");
  auto& c = *coord_;
  std::vector<std::optional<TaskResult>> results(tasks.size());
  std::vector<int> attempts(tasks.size(), 0);
  auto post_task = [&](size_t i) {
    const int64_t t = post("T" + tasks[i]);
    c.tickets[t] = {i, Clock::now(), {}, -1};
    ++attempts[i];
  };
  for (size_t i = 0; i < tasks.size(); ++i) post_task(i);
  const auto owner_of = [&](int64_t t) { return std::stoi(world_->store_get(key("who/" + std::to_string(t)))); };

  // One finished ticket: its task's result unless another ticket's came first.
  auto take_result = [&](int64_t t) {
    const std::string rk = key("result/" + std::to_string(t));
    const std::string text = world_->store_get(rk);
    world_->store_erase(rk);
    world_->store_erase(key("task/" + std::to_string(t)));
    const auto it = c.tickets.find(t);
    if (it == c.tickets.end()) return;  // a copy whose task was done already
    const size_t i = it->second.task;
    const int owner = it->second.owner >= 0 ? it->second.owner : owner_of(t);
    c.tickets.erase(it);
    if (results[i]) return;
    QNAS_CHECK(!text.empty() && (text[0] == 'R' || text[0] == 'E'), "task queue: malformed result of ticket ", t);
    QNAS_CHECK(text[0] == 'R', "worker rank ", owner, " (", world_->hosts()[size_t(owner)], "), task ", i, ": ",
               text.substr(1));
    const size_t nl = text.find('\n');
    TaskResult r{text.substr(nl + 1), owner, std::stod(text.substr(1, nl - 1)), attempts[i]};
    ++stats_.tasks;
    ++stats_.tasks_by_worker[owner];
    stats_.seconds_by_worker[owner] += r.seconds;
    c.finished_seconds.push_back(r.seconds);
    results[i] = std::move(r);
    for (auto& [other, ticket] : c.tickets)  // copies still queued or running: skip them
      if (ticket.task == i) world_->store_set(key("cancel/" + std::to_string(other)), "");
  };

  // Reposts tasks whose worker died (no heartbeat), never said who it was
  // (killed between claiming and writing who/t), or hangs.
  auto supervise = [&] {
    int unseen = 0;
    const int alive = c.refresh(*world_, prefix_, dist_.worker_timeout_s, &unseen);
    const auto now = Clock::now();
    const double patience = unseen > 0 ? dist_.timeout_s : dist_.worker_timeout_s;
    QNAS_CHECK(alive > 0 || seconds_between(c.last_alive, now) < patience, "task queue '", prefix_,
               "': no worker left (", workers(), " started; none has sent a heartbeat for ", dist_.worker_timeout_s,
               " s = dist.worker_timeout_s); ", c.tickets.size(), " tasks unfinished");
    const int64_t claims = world_->store_add(key("claim"), 0);
    const double hang_s = task_timeout(dist_, c.finished_seconds);
    std::vector<std::pair<int64_t, std::string>> lost;
    for (auto& [t, ticket] : c.tickets) {
      if (results[ticket.task] || ticket.replaced) continue;
      if (ticket.owner < 0 && world_->store_has(key("who/" + std::to_string(t)))) {
        ticket.owner = owner_of(t);
        ticket.started = now;
      }
      if (ticket.owner >= 0) {
        if (c.dead(ticket.owner, dist_.worker_timeout_s))
          lost.push_back({t, "rank " + std::to_string(ticket.owner) + " sent no heartbeat for " +
                                 std::to_string(int(dist_.worker_timeout_s)) + " s"});
        else if (seconds_between(ticket.started, now) > hang_s)
          lost.push_back({t, "rank " + std::to_string(ticket.owner) + " has run it for over " +
                                 std::to_string(int(hang_s)) + " s (task timeout)"});
      } else if (t < claims && seconds_between(ticket.posted, now) > dist_.worker_timeout_s) {
        lost.push_back({t, "its ticket was taken by a worker that never started it"});
      }
    }
    for (const auto& [t, why] : lost) {
      const size_t i = c.tickets.at(t).task;
      c.tickets.at(t).replaced = true;
      post_task(i);
      ++stats_.reposted;
      std::fprintf(stderr, "queue: task %zu posted again (%s)\n", i, why.c_str());
    }
  };

  size_t next = 0;
  Backoff backoff;
  while (next < tasks.size()) {
    const int64_t done = world_->store_add(key("done"), 0);
    for (; c.results_read < done; ++c.results_read) {
      take_result(std::stoll(world_->store_get(key("finished/" + std::to_string(c.results_read)))));
      backoff.reset();
    }
    for (; next < tasks.size() && results[next]; ++next) on_result(next, *results[next]);
    if (next == tasks.size()) break;
    if (seconds_between(c.last_supervised, Clock::now()) > 0.25) supervise(), c.last_supervised = Clock::now();
    backoff.wait();
  }
  // Tickets left are copies of finished tasks; their results are dropped when read.
}

void TaskQueue::close() {
  if (!coord_ || closed_) return;
  closed_ = true;
  // Every worker holds at most one ticket not yet posted, and takes at most
  // one more before it sees a stop: stops up to claims + workers reach all.
  const int64_t claims = world_->store_add(key("claim"), 0);
  const int64_t end = std::max(claims, posted_) + workers();
  while (posted_ < end) post("S");
  int unseen = 0;
  const int live = coord_->refresh(*world_, prefix_, dist_.worker_timeout_s, &unseen) + unseen;
  const auto now = Clock::now();
  Backoff backoff;
  while (world_->store_add(key("left"), 0) < live &&
         seconds_between(now, Clock::now()) < dist_.worker_timeout_s)
    backoff.wait();
}

void TaskQueue::serve(const std::function<std::string(const std::string&)>& handler) {
  QNAS_CHECK(!coord_, "task queue: serve() is for the workers, not rank 0");
  const std::string me = std::to_string(world_->rank());
  try {
    Heartbeat beat(*world_, key("beat/" + me), std::min(1.0, dist_.worker_timeout_s / 5));
    for (;;) {
      const std::string t = std::to_string(world_->store_add(key("claim"), 1) - 1);
      world_->store_set(key("who/" + t), me);
      Backoff backoff;
      while (!world_->store_has(key("task/" + t))) backoff.wait();
      const std::string task = world_->store_get(key("task/" + t));
      if (task == "S") break;
      if (world_->store_has(key("cancel/" + t))) continue;
      std::string result;
      const auto start = Clock::now();
      try {
        const std::string value = handler(task.substr(1));
        result = "R" + std::to_string(seconds_between(start, Clock::now())) + "\n" + value;
      } catch (const std::exception& e) {
        result = std::string("E") + e.what();
      }
      world_->store_set(key("result/" + t), result);
      const int64_t k = world_->store_add(key("done"), 1) - 1;
      world_->store_set(key("finished/" + std::to_string(k)), t);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    QNAS_THROW("worker rank ", me, ": lost the coordinator's store (rank 0 at ", world_->placement().master_addr, ":",
               world_->placement().master_port, "): ", e.what());
  }
  world_->store_add(key("left"), 1);
}

// --- Pinning ---------------------------------------------------------------------------

namespace {

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Every thread of this process (LibTorch's pools included) onto `cpus`;
// threads started later inherit it.
bool pin_process(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return false;
  bool ok = true;
  while (const dirent* e = readdir(dir)) {
    const int tid = std::atoi(e->d_name);
    if (tid > 0) ok = sched_setaffinity(tid, sizeof set, &set) == 0 && ok;
  }
  closedir(dir);
  return ok;
}

}  // namespace

std::string pin_worker(const World& world, int threads) {
  const auto& hosts = world.hosts();
  const std::string& host = hosts[size_t(world.rank())];
  int slot = 0, on_host = 0;
  for (int r = 1; r < world.size(); ++r) {
    if (hosts[size_t(r)] != host) continue;
    if (r < world.rank()) ++slot;
    ++on_host;
  }
  const auto cpus = allowed_cpus();
  const std::string who = "rank " + std::to_string(world.rank()) + " on " + host;
  if (int(cpus.size()) < on_host * threads)
    return who + ": not pinned (" + std::to_string(on_host) + " workers x " + std::to_string(threads) +
           (threads == 1 ? " thread" : " threads") + " on " + std::to_string(cpus.size()) +
           " cores: their latency timings disturb each other)";
  const std::vector<int> mine(cpus.begin() + slot * threads, cpus.begin() + (slot + 1) * threads);
  std::string list;
  for (int c : mine) list += (list.empty() ? "" : ",") + std::to_string(c);
  if (!pin_process(mine)) return who + ": pinning to cores " + list + " failed (sched_setaffinity)";
  return who + ": pinned to cores " + list;
}

}  // namespace qnas::core
