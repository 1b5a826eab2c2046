#pragma once
// The processes of one job: rank, size and collectives on PyTorch's c10d
// (rendezvous through a TCPStore served by rank 0, collectives through
// ProcessGroupGloo). A launcher starts the processes and says who is who in
// environment variables:
//
//   torchrun --no_python   RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//                          MASTER_ADDR, MASTER_PORT (torchrun's agent serves
//                          the store there: TORCHELASTIC_USE_AGENT_STORE)
//   mpirun (OpenMPI)       OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//                          OMPI_COMM_WORLD_LOCAL_RANK, ..._LOCAL_SIZE
//                          (MASTER_ADDR / MASTER_PORT if set, else dist.*)
//
// Without either, the world is this one process and nothing is opened.
// c10d stays behind this header.

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/core/config.hpp"

namespace qnas::core {

/// Who this process is, as its launcher said.
struct Placement {
  std::string launcher = "none";  // none | torchrun | mpirun
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // the launcher serves the store; rank 0 connects to it too
};

/// Reads the launcher's variables through `getenv` (std::getenv by
/// default; tests pass their own). Throws naming the variable when one is
/// malformed or the set is inconsistent.
Placement placement_from_env(const DistConfig& dist,
                             const std::function<const char*(const char*)>& getenv = nullptr);

class World {
 public:
  /// One process: rank 0 of 1.
  World();
  /// Joins the job `p` describes (rank 0 serves the store). Throws naming
  /// the address and port when the store cannot be reached within
  /// dist.connect_timeout_s.
  World(const Placement& p, const DistConfig& dist);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  const Placement& placement() const { return placement_; }
  int rank() const { return placement_.rank; }
  int size() const { return placement_.size; }
  bool coordinator() const { return placement_.rank == 0; }
  /// Every rank's host name, by rank.
  const std::vector<std::string>& hosts() const { return hosts_; }

  /// Sums every tensor (float32, contiguous) over the ranks, in place; the
  /// tensors are sent in buckets of about `bucket_bytes`, all in flight at
  /// once. A no-op in a world of one.
  void allreduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 16 << 20) const;
  /// Rank `root`'s values into every rank's tensors, in place.
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0) const;
  /// Rank 0's bytes to every rank (through the store: files such as a
  /// checkpoint, which the other hosts may not see).
  std::string broadcast_bytes(const std::string& key, const std::string& bytes) const;
  void barrier() const;

  /// The job's key-value store (keys under "qnas/"), what core::TaskQueue
  /// is built on. Only in a world of several; every call is one round trip.
  void store_set(const std::string& key, const std::string& value) const;
  /// Waits for `key` up to dist.timeout_s.
  std::string store_get(const std::string& key) const;
  bool store_has(const std::string& key) const;
  /// Adds `delta` to the counter `key` (created at 0) and returns its value.
  int64_t store_add(const std::string& key, int64_t delta) const;
  void store_erase(const std::string& key) const;

  /// "2 ranks (torchrun) on 1 host: box (ranks 0-1)".
  std::string describe() const;

 private:
  struct Impl;
  Placement placement_;
  std::vector<std::string> hosts_;
  std::unique_ptr<Impl> impl_;
};

/// The world of this process: joined when a launcher started it, else one.
std::shared_ptr<World> join_world(const DistConfig& dist);

}  // namespace qnas::core
