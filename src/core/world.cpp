#include "src/core/world.hpp"

#include <ATen/ATen.h>
// Debian's LibTorch is built with Gloo; its header declares the group only
// under this macro (defined here, not on the command line, so the shared
// precompiled header still applies).
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>

#include "src/core/error.hpp"

namespace qnas::core {

namespace {

using Getenv = std::function<const char*(const char*)>;

// The integer in variable `name`, or `fallback` when it is unset.
int env_int(const Getenv& getenv, const char* name, int fallback) {
  const char* text = getenv(name);
  if (!text) return fallback;
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == std::string(text).size()) return v;
  } catch (const std::exception&) {
  }
  QNAS_THROW("environment variable ", name, "='", text, "': expected an integer (set by the launcher)");
}

void check_placement(const Placement& p) {
  QNAS_CHECK(p.size >= 1 && p.rank >= 0 && p.rank < p.size, p.launcher, ": rank ", p.rank, " of ", p.size,
             " ranks; expected 0 <= rank < world size >= 1");
  QNAS_CHECK(p.local_size >= 1 && p.local_size <= p.size && p.local_rank >= 0 && p.local_rank < p.local_size,
             p.launcher, ": local rank ", p.local_rank, " of ", p.local_size, " on this host (", p.size,
             " ranks in all); expected 0 <= local rank < local size <= world size");
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

bool serves_store(const Placement& p) { return p.rank == 0 && !p.agent_store; }

bool loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0; }

std::chrono::milliseconds millis(double seconds) { return std::chrono::milliseconds(int64_t(seconds * 1000)); }

// Flattened copies of consecutive tensors, about `bucket_bytes` each.
std::vector<std::vector<at::Tensor>> buckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  std::vector<std::vector<at::Tensor>> out(1);
  int64_t bytes = 0;
  for (const auto& t : tensors) {
    if (bytes >= bucket_bytes) out.emplace_back(), bytes = 0;
    out.back().push_back(t);
    bytes += t.nbytes();
  }
  return out;
}

}  // namespace

Placement placement_from_env(const DistConfig& dist, const Getenv& getenv_or_null) {
  const Getenv getenv = getenv_or_null ? getenv_or_null : [](const char* n) -> const char* { return std::getenv(n); };
  struct Names {
    const char *launcher, *rank, *size, *local_rank, *local_size;
  };
  static const Names launchers[] = {
      {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
      {"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"}};
  Placement p;
  for (const Names& n : launchers) {
    if (!getenv(n.size) && !getenv(n.rank)) continue;
    QNAS_CHECK(getenv(n.size) && getenv(n.rank), "environment: ", n.rank, " and ", n.size, " must be set together (",
               n.launcher, " sets both); found only ", getenv(n.rank) ? n.rank : n.size);
    p.launcher = n.launcher;
    p.rank = env_int(getenv, n.rank, 0);
    p.size = env_int(getenv, n.size, 1);
    p.local_rank = env_int(getenv, n.local_rank, p.rank);
    // Unknown: every rank counted as on this host, so threads are not oversubscribed.
    p.local_size = env_int(getenv, n.local_size, p.size);
    break;
  }
  const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
  p.agent_store = p.launcher == "torchrun" && agent && std::string(agent) == "True";
  const char* addr = getenv("MASTER_ADDR");
  p.master_addr = !dist.master_addr.empty() ? dist.master_addr : addr && *addr ? addr : "127.0.0.1";
  p.master_port = env_int(getenv, "MASTER_PORT", dist.master_port);
  QNAS_CHECK(p.master_port > 0 && p.master_port < 65536, "MASTER_PORT=", p.master_port, ": expected a port in 1..65535");
  check_placement(p);
  return p;
}

struct World::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  mutable int64_t sequence = 0;  // makes broadcast_bytes keys unique
};

World::World() : hosts_{host_name()} {}

World::World(const Placement& p, const DistConfig& dist) : placement_(p), impl_(std::make_unique<Impl>()) {
  check_placement(p);
  const std::string where = p.master_addr + ":" + std::to_string(p.master_port);
  try {
    c10d::TCPStoreOptions opts;
    opts.port = uint16_t(p.master_port);
    opts.isServer = serves_store(p);
    opts.numWorkers = size_t(p.size);
    opts.waitWorkers = !p.agent_store;
    opts.timeout = millis(dist.connect_timeout_s);
    // Our keys under a prefix: torchrun's agent keeps its own in the same store.
    impl_->store = c10::make_intrusive<c10d::PrefixStore>("qnas", c10::make_intrusive<c10d::TCPStore>(p.master_addr, opts));
  } catch (const std::exception& e) {
    QNAS_THROW("world (", p.launcher, "): rank ", p.rank, " of ", p.size, " could not ",
               serves_store(p) ? "serve" : "reach", " the store at ", where, " within dist.connect_timeout_s = ",
               dist.connect_timeout_s, " s; expected rank 0 listening there (MASTER_ADDR / MASTER_PORT, or "
               "dist.master_addr / dist.master_port): ", e.what());
  }
  try {
    impl_->store->setTimeout(millis(dist.timeout_s));
    auto options = c10d::ProcessGroupGloo::Options::create(millis(dist.timeout_s));
    options->devices.push_back(loopback(p.master_addr)
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", impl_->store), p.rank, p.size, options);
    const std::string host = host_name();
    impl_->store->set("host/" + std::to_string(p.rank), std::vector<uint8_t>(host.begin(), host.end()));
    for (int r = 0; r < p.size; ++r) {
      const auto bytes = impl_->store->get("host/" + std::to_string(r));
      hosts_.emplace_back(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    QNAS_THROW("world (", p.launcher, "): rank ", p.rank, " of ", p.size, " reached the store at ", where,
               " but could not join the process group: ", e.what());
  }
}

World::~World() = default;

void World::allreduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) const {
  if (size() == 1 || tensors.empty()) return;
  struct InFlight {
    std::vector<at::Tensor> parts;
    std::vector<at::Tensor> flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<InFlight> flights;
  for (auto& parts : buckets(tensors, bucket_bytes)) {
    std::vector<at::Tensor> views;
    for (const auto& t : parts) views.push_back(t.reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(views)};
    auto work = impl_->group->allreduce(flat);
    flights.push_back({std::move(parts), std::move(flat), std::move(work)});
  }
  for (auto& f : flights) {
    f.work->wait();
    int64_t offset = 0;
    for (auto& t : f.parts) {
      t.copy_(f.flat[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

void World::broadcast(const std::vector<at::Tensor>& tensors, int root) const {
  if (size() == 1) return;
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  for (const auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    impl_->group->broadcast(one, opts)->wait();
  }
}

std::string World::broadcast_bytes(const std::string& key, const std::string& bytes) const {
  if (size() == 1) return bytes;
  const std::string k = "bytes/" + key + "/" + std::to_string(impl_->sequence++);
  if (coordinator()) {
    impl_->store->set(k, std::vector<uint8_t>(bytes.begin(), bytes.end()));
    return bytes;
  }
  const auto got = impl_->store->get(k);
  return std::string(got.begin(), got.end());
}

void World::store_set(const std::string& key, const std::string& value) const {
  QNAS_CHECK(impl_, "world: no store in a world of one process");
  impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
}

std::string World::store_get(const std::string& key) const {
  QNAS_CHECK(impl_, "world: no store in a world of one process");
  const auto bytes = impl_->store->get(key);
  return std::string(bytes.begin(), bytes.end());
}

bool World::store_has(const std::string& key) const {
  QNAS_CHECK(impl_, "world: no store in a world of one process");
  return impl_->store->check({key});
}

int64_t World::store_add(const std::string& key, int64_t delta) const {
  QNAS_CHECK(impl_, "world: no store in a world of one process");
  return impl_->store->add(key, delta);
}

void World::store_erase(const std::string& key) const {
  QNAS_CHECK(impl_, "world: no store in a world of one process");
  impl_->store->deleteKey(key);
}

void World::barrier() const {
  if (size() > 1) impl_->group->barrier()->wait();
}

std::string World::describe() const {
  std::map<std::string, std::vector<int>> by_host;
  for (size_t r = 0; r < hosts_.size(); ++r) by_host[hosts_[r]].push_back(int(r));
  std::string out = std::to_string(size()) + (size() == 1 ? " rank" : " ranks") +
                    (placement_.launcher == "none" ? "" : " (" + placement_.launcher + ")") + " on " +
                    std::to_string(by_host.size()) + (by_host.size() == 1 ? " host" : " hosts") + ":";
  for (const auto& [host, ranks] : by_host) {
    out += " " + host + " (rank" + (ranks.size() == 1 ? " " : "s ");
    for (size_t i = 0; i < ranks.size(); ++i) out += (i ? "," : "") + std::to_string(ranks[i]);
    out += ")";
  }
  return out;
}

std::shared_ptr<World> join_world(const DistConfig& dist) {
  const Placement p = placement_from_env(dist);
  if (p.size == 1) return std::make_shared<World>();
  return std::make_shared<World>(p, dist);
}

}  // namespace qnas::core
