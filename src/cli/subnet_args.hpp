#pragma once
// The options of commands that act on one subnet of a trained supernet
// (eval, export), and opening it: config, checkpoint, data, the chosen spec.

#include <string>

#include "src/cli/commands.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"

namespace qnas::cli {

struct SubnetArgs {
  ConfigArgs config;
  std::string subnet = "largest";
  std::string bits;
  std::string checkpoint;
};

/// CONFIG, --set, --subnet, --bits, --checkpoint.
void add_subnet_args(CLI::App& cmd, SubnetArgs& args);

struct OpenSubnet {
  eval::Session session;
  supernet::SubnetSpec spec;
};

/// Checks the arguments first (a typo should not wait for data and
/// checkpoint to load), then opens the session and chooses the spec.
/// `distributed`: the command runs as several processes when launched so
/// (rank 0 coordinates a task queue); otherwise a launcher is refused.
OpenSubnet open_subnet(const SubnetArgs& args, bool distributed = false);

/// One row of the metrics an evaluation reports (those present), for tables.
std::string eval_result_table(const std::string& label, const eval::EvalResult& r, const std::string& format);

/// latency_ms of this process on the run folder's scale: the anchor in
/// `dir`/latency_reference.json when it fits this host and config, else
/// measured now (and stored there when `write`); says which on stderr.
void use_run_latency_anchor(eval::Evaluator& evaluator, const supernet::SpaceDesc& space, const std::string& dir,
                            bool write);

/// Spec, metrics, phases, notes, layers (and per-layer compression) as JSON.
nlohmann::json eval_result_json(const eval::EvalResult& r);

}  // namespace qnas::cli
