#pragma once
// The workflows behind the commands: a session (config, data, supernet),
// training with per-epoch validation, and choosing a subnet from the command
// line's words. The CLI only parses arguments and calls these.

#include <memory>
#include <optional>
#include <string>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "src/core/world.hpp"
#include "supernet/supernet.hpp"
#include "supernet/trainer.hpp"

namespace qnas::eval {

struct Session {
  core::Config config;
  core::Dataset data;
  supernet::Supernet net;
  int threads = 1;
  std::shared_ptr<core::World> world;  // the processes of this job (one without a launcher)
};

/// Joins the launcher's world (core/world.hpp), sets threads (shared among
/// the ranks on this host), loads the data and builds the supernet (seeded
/// init, the same on every rank). With
/// `checkpoint` non-empty, loads those weights (refusing a different space).
/// session.config is `config` with data.mean/std resolved (`auto` computed):
/// the config a run folder records. With `queue`, rank 0 only coordinates a
/// task queue (core/task_queue.hpp): the cores of its host are shared among
/// the other ranks there.
Session open_session(const core::Config& config, const std::string& checkpoint = "", bool queue = false);

/// A session of one process with the config's data and no supernet (for
/// commands that score an exported model): session.net is empty.
Session open_data_session(const core::Config& config);

/// Appends this session to `<dir>/run.json` (atomically): qnas version,
/// UTC start time, the command, host (CPU model, cores), threads per
/// process and the world. Reports read it to say what ran where; each
/// --resume adds an entry. Call on the coordinator only.
void record_run_session(const Session& session, const std::string& dir, const std::string& command);

/// Refuses a job of several processes for `command`, which runs as one.
void require_one_process(const Session& session, const std::string& command);

/// Trains session.net into config.output.dir (data parallel over
/// session.world), validating the largest and smallest subnets on the
/// validation split after each epoch (rank 0).
supernet::TrainSummary train_supernet(Session& session, bool resume);

/// Parses "W" or "W/A" (e.g. "4/8"); W alone means weights only (A = 32).
quant::LayerPolicy parse_bits(const std::string& text);

/// "2,4,8/8": candidate weight bit-widths and one activation bit-width.
struct BitChoices {
  std::vector<int> weight_bits;
  int act_bits = 32;
};
BitChoices parse_bit_choices(const std::string& text);

/// Throws unless `which` is largest, smallest, random or a *.json path.
void check_subnet_word(const std::string& which);

/// largest | smallest | random | path to a spec JSON. `bits` overrides every
/// layer's policy; random draws from (seed), policies included unless `bits`.
supernet::SubnetSpec choose_subnet(const supernet::SpaceDesc& space, const std::string& which,
                                   const std::optional<quant::LayerPolicy>& bits, uint64_t seed);

}  // namespace qnas::eval
