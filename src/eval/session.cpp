#include "src/eval/session.hpp"

#include <torch/utils.h>

#include <ctime>
#include <optional>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/version.hpp"
#include "src/core/runtime.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/latency_model.hpp"
#include "supernet/checkpoint.hpp"

namespace qnas::eval {

namespace {
supernet::InputShape input_shape(const core::Dataset& d) {
  return {d.channels, d.height, d.width, d.classes};
}
}  // namespace

Session open_session(const core::Config& config, const std::string& checkpoint, bool queue) {
  Session s;
  s.config = config;
  s.world = core::join_world(config.dist);
  const auto& hosts = s.world->hosts();
  const bool idle_coordinator_here = queue && s.world->size() > 1 && hosts[0] == hosts[size_t(s.world->rank())];
  const int computing_ranks = s.world->placement().local_size - (idle_coordinator_here ? 1 : 0);
  s.threads = core::init_runtime(config, std::max(1, computing_ranks));
  s.data = core::load_dataset(config.data, config.seed, s.threads);
  s.config.data = core::resolved_data_config(config.data, s.data);
  torch::manual_seed(core::derive_seed(config.seed, "init"));
  s.net = supernet::make_supernet(config, input_shape(s.data));
  if (!checkpoint.empty()) supernet::load_checkpoint(checkpoint, *s.net);
  return s;
}

Session open_data_session(const core::Config& config) {
  Session s;
  s.config = config;
  s.world = core::join_world(config.dist);
  require_one_process(s, "eval --model");
  s.threads = core::init_runtime(config, 1);
  s.data = core::load_dataset(config.data, config.seed, s.threads);
  s.config.data = core::resolved_data_config(config.data, s.data);
  return s;
}

void record_run_session(const Session& s, const std::string& dir, const std::string& command) {
  const std::string path = dir + "/run.json";
  nlohmann::json j = {{"sessions", nlohmann::json::array()}};
  if (core::file_exists(path)) {
    try {
      j = nlohmann::json::parse(core::read_text_file(path, "run record"));
    } catch (const nlohmann::json::exception& e) {
      QNAS_THROW(path, ": not a qnas run record (", e.what(), "); move it away to start a new one");
    }
  }
  char started[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["sessions"].push_back({{"qnas_version", core::version()}, {"started", started}, {"command", command},
                           {"host", host_description()}, {"threads_per_process", s.threads},
                           {"world", s.world->describe()}});
  core::write_file_atomic(path, j.dump(1) + "\n");
}

void require_one_process(const Session& s, const std::string& command) {
  QNAS_CHECK(s.world->size() == 1, "qnas ", command, " runs as one process; it was started as ", s.world->describe(),
             "; expected no launcher (only qnas train runs data parallel)");
}

supernet::TrainSummary train_supernet(Session& s, bool resume) {
  supernet::Trainer trainer(s.config, s.net, s.data, s.world);
  supernet::TrainOptions options;
  options.resume = resume;
  std::optional<Evaluator> evaluator;  // rank 0 validates; the others only train
  if (s.data.val.size() > 0 && s.world->coordinator()) {
    evaluator.emplace(s.config, s.net, s.data);
    options.epoch_metric_names = {"val_top1_largest", "val_top1_smallest"};
    options.on_epoch_end = [&](int) {
      const auto& space = s.net->space();
      const int64_t n = s.config.train.eval_images;
      return supernet::EpochMetrics{
          {"val_top1_largest", evaluator->evaluate(supernet::largest_spec(space), "val", {n}).metrics.at("top1")},
          {"val_top1_smallest", evaluator->evaluate(supernet::smallest_spec(space), "val", {n}).metrics.at("top1")}};
    };
  }
  return trainer.run(options);
}

quant::LayerPolicy parse_bits(const std::string& text) {
  quant::LayerPolicy p;
  const auto slash = text.find('/');
  try {
    size_t used = 0;
    p.weight_bits = std::stoi(text.substr(0, slash), &used);
    QNAS_CHECK(used == (slash == std::string::npos ? text.size() : slash), "");
    if (slash != std::string::npos) {
      p.act_bits = std::stoi(text.substr(slash + 1), &used);
      QNAS_CHECK(used == text.size() - slash - 1, "");
    }
  } catch (const std::exception&) {
    QNAS_THROW("--bits '", text, "': expected W or W/A, e.g. 8, 4/8 or 8/8");
  }
  quant::check_policy(p, "--bits '" + text + "'");
  return p;
}

BitChoices parse_bit_choices(const std::string& text) {
  const auto slash = text.find('/');
  const std::string weights = text.substr(0, slash), acts = slash == std::string::npos ? "" : text.substr(slash);
  BitChoices c;
  for (size_t start = 0; start <= weights.size();) {
    const auto comma = std::min(weights.find(',', start), weights.size());
    try {
      const auto p = parse_bits(weights.substr(start, comma - start) + acts);
      c.weight_bits.push_back(p.weight_bits);
      c.act_bits = p.act_bits;
    } catch (const Error&) {
      QNAS_THROW("--bits '", text, "': expected W[,W...][/A], e.g. 2,4,8/8");
    }
    start = comma + 1;
  }
  return c;
}

void check_subnet_word(const std::string& which) {
  const bool json = which.size() > 5 && which.substr(which.size() - 5) == ".json";
  QNAS_CHECK(which == "largest" || which == "smallest" || which == "random" || json, "--subnet '", which,
             "': expected largest, smallest, random or a path to a spec .json file");
}

supernet::SubnetSpec choose_subnet(const supernet::SpaceDesc& space, const std::string& which,
                                   const std::optional<quant::LayerPolicy>& bits, uint64_t seed) {
  supernet::SubnetSpec spec;
  if (which == "largest") {
    spec = supernet::largest_spec(space);
  } else if (which == "smallest") {
    spec = supernet::smallest_spec(space);
  } else if (which == "random") {
    core::Rng rng(core::derive_seed(seed, "cli_random_subnet"));
    spec = supernet::random_spec(space, rng, /*with_policy=*/!bits.has_value());
  } else {
    check_subnet_word(which);
    spec = supernet::load_spec(which);
  }
  if (bits) spec = supernet::with_uniform_policy(spec, *bits);
  supernet::validate_spec(space, spec, "--subnet " + which);
  return spec;
}

}  // namespace qnas::eval
