// bench_train_throughput: time qnas's sandwich training step.
//
// Writes the supernet structure and the subnets of every timed step to a
// JSON file, so that experiments/bench/pytorch_sandwich.py can time the same
// steps in PyTorch (see experiments/bench/train_throughput.sh).

#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>

#include "src/core/config.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/runtime.hpp"
#include "src/core/table.hpp"
#include "src/eval/session.hpp"
#include "supernet/trainer.hpp"

using namespace qnas;

int main(int argc, char** argv) {
  CLI::App app{"time qnas's sandwich training step"};
  std::string config_path, specs_out, format = "md";
  std::vector<std::string> sets;
  int steps = 10, warmup = 3;
  app.add_option("config", config_path, "qnas YAML config")->required();
  app.add_option("--set", sets, "config overrides")->take_all();
  app.add_option("--steps", steps, "timed steps")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str();
  app.add_option("--specs-out", specs_out, "write structure + per-step subnets here (for the PyTorch side)");
  app.add_option("--format", format, "text | csv | md | json")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const auto cfg = core::load_config(config_path, sets);
    const int threads = core::init_runtime(cfg);
    torch::manual_seed(core::derive_seed(cfg.seed, "init"));
    auto net = supernet::make_supernet(cfg, {1, 28, 28, 10});
    core::Dataset data;  // the step takes its batch directly
    supernet::Trainer trainer(cfg, net, data);
    const int64_t batch = cfg.train.batch_size;
    at::manual_seed(0);
    const auto images = at::randn({batch, 1, 28, 28}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto labels = at::randint(10, {batch}, at::kLong);

    // The subnets of every step, drawn as training would.
    core::Rng sampler(core::derive_seed(cfg.seed, "bench"));
    std::vector<std::vector<supernet::SubnetSpec>> plan;
    for (int s = 0; s < warmup + steps; ++s) plan.push_back(trainer.sandwich(sampler));
    if (!specs_out.empty()) {
      nlohmann::json j = {{"structure", net->space().structure}, {"batch_size", batch}, {"threads", threads},
                          {"warmup", warmup}, {"train", {{"lr", cfg.train.lr}, {"momentum", cfg.train.momentum},
                          {"nesterov", cfg.train.nesterov}, {"weight_decay", cfg.train.weight_decay},
                          {"label_smoothing", cfg.train.label_smoothing}, {"kd_ratio", cfg.train.kd_ratio}}}};
      for (const auto& specs : plan) {
        nlohmann::json step = nlohmann::json::array();
        for (const auto& s : specs) step.push_back(supernet::to_json(s)["arch"]);
        j["steps"].push_back(step);
      }
      core::write_file_atomic(specs_out, j.dump() + "\n");
    }
    net->train();
    double seconds = 0;
    for (int s = 0; s < warmup + steps; ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      trainer.step_with(images, labels, plan[size_t(s)], cfg.train.lr);
      if (s >= warmup) seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    core::Table t({"impl", "threads", "batch", "subnets_per_step", "steps", "s_per_step", "images_per_s"});
    t.add({"qnas", std::to_string(threads), std::to_string(batch), std::to_string(plan[0].size()),
           std::to_string(steps), core::fixed(seconds / steps, 4), core::fixed(batch * steps / seconds, 1)});
    std::printf("%s", t.render(format).c_str());
  } catch (const qnas::Error& e) {
    std::fprintf(stderr, "bench_train_throughput: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
