#include <cstdio>
#include <tuple>

#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"

namespace qnas::cli {

namespace {

struct EvalArgs {
  SubnetArgs target;
  std::string split = "test";
  std::string json_out;
  std::string format = "text";
  bool layers = false;
  bool deployed = false;
  bool no_latency = false;
};

// Column, metric, decimals: the metrics the table shows when present.
const std::vector<std::tuple<std::string, std::string, int>> kColumns = {
    {"top1", "top1", 2}, {"top1_int8", "top1_deployed", 2}, {"max_logit_diff", "max_logit_diff", 4},
    {"params", "params", 0}, {"macs", "macs", 0}, {"bops", "bops", 0}, {"model_bytes", "model_bytes", 0},
    {"latency_ms", "latency_ms", 3}, {"p10", "latency_ms_p10", 3}, {"p90", "latency_ms_p90", 3},
    {"img_s", "throughput_img_s", 0}, {"peak_rss_mb", "peak_rss_bytes", -1}};

std::string result_table(const std::string& label, const eval::EvalResult& r, const std::string& format) {
  std::vector<std::string> head{"subnet", "split", "images"}, row{label, r.split, std::to_string(r.images)};
  for (const auto& [column, metric, decimals] : kColumns) {
    const auto it = r.metrics.find(metric);
    if (it == r.metrics.end()) continue;
    head.push_back(column);
    row.push_back(decimals < 0 ? core::fixed(it->second / 1048576.0, 1) : core::fixed(it->second, decimals));
  }
  head.push_back("eval_s");
  row.push_back(core::fixed(r.seconds, 2));
  core::Table t(head);
  t.add(row);
  return t.render(format);
}

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
  return {{"spec", supernet::to_json(r.spec)}, {"split", r.split},   {"images", r.images},
          {"metrics", r.metrics},              {"eval_s", r.seconds}, {"phase_s", r.phase_s},
          {"notes", r.notes},                  {"layers", layers}};
}

}  // namespace

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "evaluate one subnet: BN recalibration, top-1, params, MACs, BOPs, model bytes");
  auto a = std::make_shared<EvalArgs>();
  add_subnet_args(*cmd, a->target);
  cmd->add_option("--split", a->split, "val | test")->check(CLI::IsMember({"val", "test"}))->capture_default_str();
  cmd->add_option("--json", a->json_out, "write spec, metrics and layers as JSON to this file");
  add_table_format(*cmd, a->format);
  cmd->add_flag("--layers", a->layers, "also print the per-layer table");
  cmd->add_flag("--deployed", a->deployed,
                "also run top-1 on the deployed model (int8 kernels) and report its agreement with the simulation");
  cmd->add_flag("--no-latency", a->no_latency, "skip timing the deployed model");
  cmd->callback([a] {
    auto [session, spec] = open_subnet(a->target);
    eval::Evaluator evaluator(session.config, session.net, session.data);
    eval::EvalOptions opts;
    opts.deployed = a->deployed;
    opts.latency = !a->no_latency;
    const auto r = evaluator.evaluate(spec, a->split, opts);

    std::printf("%s", result_table(a->target.subnet + (a->target.bits.empty() ? "" : " @" + a->target.bits), r, a->format).c_str());
    if (a->format != "json")
      for (const auto& note : r.notes) std::printf("note: %s\n", note.c_str());
    std::string phases;
    for (const auto& [name, sec] : r.phase_s) phases += " " + name + " " + core::fixed(sec, 2) + "s";
    std::fprintf(stderr, "eval phases:%s\n", phases.c_str());
    if (a->layers) std::printf("\n%s", layer_table(r.layers, a->format).c_str());
    if (!a->json_out.empty()) core::write_file_atomic(a->json_out, result_json(r).dump(2) + "\n");
  });
}

}  // namespace qnas::cli
