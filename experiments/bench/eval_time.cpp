// bench_eval_time: wall time of evaluating subnets (extraction, BN
// recalibration, folding, quantization, calibration, top-1 on a split),
// for the largest, the smallest and N random subnets of a trained supernet.
//
//   build/bench/bench_eval_time configs/quickstart.yaml --random 10 --format md

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "src/core/error.hpp"
#include "src/core/table.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"

using namespace qnas;

int main(int argc, char** argv) {
  CLI::App app{"time subnet evaluation"};
  std::string config_path, split = "test", bits, format = "md";
  std::vector<std::string> sets;
  int random = 10;
  app.add_option("config", config_path, "qnas YAML config (its output.dir holds the checkpoint)")->required();
  app.add_option("--set", sets, "config overrides")->take_all();
  app.add_option("--random", random, "random subnets besides largest and smallest")->capture_default_str();
  app.add_option("--split", split, "val | test")->capture_default_str();
  app.add_option("--bits", bits, "uniform policy W[/A] (default: each subnet's own, fp32 for the extremes)");
  app.add_option("--format", format, "text | csv | md | json")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const auto cfg = core::load_config(config_path, sets);
    auto session = eval::open_session(cfg, supernet::checkpoint_path(cfg.output.dir));
    eval::Evaluator evaluator(cfg, session.net, session.data);
    std::optional<quant::LayerPolicy> policy;
    if (!bits.empty()) policy = eval::parse_bits(bits);
    std::vector<std::pair<std::string, supernet::SubnetSpec>> subnets{
        {"largest", eval::choose_subnet(session.net->space(), "largest", policy, cfg.seed)},
        {"smallest", eval::choose_subnet(session.net->space(), "smallest", policy, cfg.seed)}};
    core::Rng rng(core::derive_seed(cfg.seed, "bench_eval"));
    for (int i = 0; i < random; ++i) {
      auto spec = supernet::random_spec(session.net->space(), rng, !policy);
      if (policy) spec = supernet::with_uniform_policy(spec, *policy);
      subnets.push_back({"random" + std::to_string(i), spec});
    }
    evaluator.evaluate(subnets[0].second, split);  // warm-up: oneDNN primitive cache
    core::Table t({"subnet", "threads", "images", "macs", "top1", "bn_recal_s", "top1_s", "eval_s"});
    std::vector<double> times;
    for (const auto& [name, spec] : subnets) {
      const auto r = evaluator.evaluate(spec, split);
      times.push_back(r.seconds);
      t.add({name, std::to_string(session.threads), std::to_string(r.images), core::si(r.metrics.at("macs")),
             core::fixed(r.metrics.at("top1"), 2), core::fixed(r.phase_s.at("bn_recal"), 2),
             core::fixed(r.phase_s.at("top1"), 2), core::fixed(r.seconds, 2)});
    }
    std::sort(times.begin(), times.end());
    t.add({"median", std::to_string(session.threads), "", "", "", "", "", core::fixed(times[times.size() / 2], 2)});
    std::printf("%s", t.render(format).c_str());
  } catch (const qnas::Error& e) {
    std::fprintf(stderr, "bench_eval_time: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
