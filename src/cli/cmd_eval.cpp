#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"

namespace qnas::cli {

namespace {

struct EvalArgs {
  ConfigArgs config;
  std::string subnet = "largest";
  std::string bits;
  std::string split = "test";
  std::string json_out;
  std::string checkpoint;
  std::string format = "text";
  bool layers = false;
};

std::string layer_table(const std::vector<supernet::LayerInfo>& layers, const std::string& format) {
  core::Table t({"layer", "kind", "in", "out", "k", "stride", "out_hw", "policy", "macs", "bytes"});
  for (const auto& l : layers)
    t.add({l.name, l.kind, std::to_string(l.in_channels), std::to_string(l.out_channels), std::to_string(l.kernel),
           std::to_string(l.stride), std::to_string(l.out_h) + "x" + std::to_string(l.out_w),
           l.compressible ? quant::policy_label(l.policy) : "fp32", std::to_string(l.macs()),
           std::to_string(eval::layer_bytes(l))});
  return t.render(format);
}

nlohmann::json result_json(const eval::EvalResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"name", l.name}, {"kind", l.kind}, {"in_channels", l.in_channels},
                      {"out_channels", l.out_channels}, {"kernel", l.kernel}, {"stride", l.stride},
                      {"policy", l.policy}, {"macs", l.macs()}, {"bytes", eval::layer_bytes(l)}});
  return {{"spec", supernet::to_json(r.spec)}, {"split", r.split}, {"images", r.images},
          {"metrics", r.metrics}, {"eval_s", r.seconds}, {"phase_s", r.phase_s}, {"layers", layers}};
}

}  // namespace

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "evaluate one subnet: BN recalibration, top-1, params, MACs, BOPs, model bytes");
  auto a = std::make_shared<EvalArgs>();
  add_config_args(*cmd, a->config);
  cmd->add_option("--subnet", a->subnet, "largest | smallest | random | SPEC.json")->capture_default_str();
  cmd->add_option("--bits", a->bits, "uniform policy W[/A] on every layer, e.g. 8/8 or 4/8 (W alone: weights only)");
  cmd->add_option("--split", a->split, "val | test")->check(CLI::IsMember({"val", "test"}))->capture_default_str();
  cmd->add_option("--json", a->json_out, "write spec, metrics and layers as JSON to this file");
  cmd->add_option("--checkpoint", a->checkpoint, "supernet checkpoint (default <output.dir>/supernet.pt)");
  cmd->add_option("--format", a->format, "stdout table format: text | csv | md | json")
      ->check(CLI::IsMember({"text", "csv", "md", "json"}))->capture_default_str();
  cmd->add_flag("--layers", a->layers, "also print the per-layer table");
  cmd->callback([a] {
    // Arguments first: a typo should not wait for data and checkpoint to load.
    const auto config = core::load_config(a->config.path, a->config.sets);
    std::optional<quant::LayerPolicy> bits;
    if (!a->bits.empty()) bits = eval::parse_bits(a->bits);
    eval::check_subnet_word(a->subnet);
    const std::string ckpt = a->checkpoint.empty() ? supernet::checkpoint_path(config.output.dir) : a->checkpoint;
    auto session = eval::open_session(config, ckpt);
    const auto spec = eval::choose_subnet(session.net->space(), a->subnet, bits, config.seed);
    eval::Evaluator evaluator(config, session.net, session.data);
    const auto r = evaluator.evaluate(spec, a->split);

    core::Table t({"subnet", "split", "images", "top1", "params", "macs", "bops", "model_bytes", "eval_s"});
    t.add({a->subnet + (a->bits.empty() ? "" : " @" + a->bits), r.split, std::to_string(r.images),
           core::fixed(r.metrics.at("top1"), 2), core::fixed(r.metrics.at("params"), 0),
           core::fixed(r.metrics.at("macs"), 0), core::fixed(r.metrics.at("bops"), 0),
           core::fixed(r.metrics.at("model_bytes"), 0), core::fixed(r.seconds, 2)});
    std::printf("%s", t.render(a->format).c_str());
    std::string phases;
    for (const auto& [name, sec] : r.phase_s) phases += " " + name + " " + core::fixed(sec, 2) + "s";
    std::fprintf(stderr, "eval phases:%s\n", phases.c_str());
    if (a->layers) std::printf("\n%s", layer_table(r.layers, a->format).c_str());
    if (!a->json_out.empty()) core::write_file_atomic(a->json_out, result_json(r).dump(2) + "\n");
  });
}

}  // namespace qnas::cli
