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
  std::string model;
};

std::string layer_table(const std::vector<supernet::LayerInfo>& layers, const std::string& format) {
  core::Table t({"layer", "kind", "in", "out", "k", "stride", "out_hw", "policy", "macs", "bytes"});
  for (const auto& l : layers)
    t.add({l.name, l.kind, std::to_string(l.in_channels), std::to_string(l.out_channels), std::to_string(l.kernel),
           std::to_string(l.stride), std::to_string(l.out_h) + "x" + std::to_string(l.out_w),
           l.compressible ? quant::policy_label(l.policy) : "fp32", std::to_string(eval::layer_macs(l)),
           std::to_string(eval::layer_bytes(l))});
  return t.render(format);
}

void print_result(const EvalArgs& a, const std::string& label, const eval::EvalResult& r) {
  std::printf("%s", eval_result_table(label, r, a.format).c_str());
  if (a.format != "json")
    for (const auto& note : r.notes) std::printf("note: %s\n", note.c_str());
  std::string phases;
  for (const auto& [name, sec] : r.phase_s) phases += " " + name + " " + core::fixed(sec, 2) + "s";
  std::fprintf(stderr, "eval phases:%s\n", phases.c_str());
}

// --model DIR: a safetensors export scored on the config's data, no supernet.
void eval_export(const EvalArgs& a) {
  const auto session = eval::open_data_session(core::load_config(a.target.config.path, a.target.config.sets));
  eval::EvalOptions opts;
  opts.latency = !a.no_latency;
  const auto e = eval::evaluate_export(a.model, session.config, session.data, a.split, opts);
  print_result(a, a.model, e.result);
  if (a.json_out.empty()) return;
  auto j = eval_result_json(e.result);
  j["spec"] = e.spec;
  j["model"] = a.model;
  j.erase("layers");
  core::write_file_atomic(a.json_out, j.dump(2) + "\n");
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
  cmd->add_option("--model", a->model,
                  "score a safetensors export folder (model.safetensors + subnet.json) on the config's data instead: "
                  "top-1 on int8 kernels and simulated, model bytes, latency; no supernet or checkpoint")
      ->excludes(cmd->get_option("--subnet"))
      ->excludes(cmd->get_option("--bits"))
      ->excludes(cmd->get_option("--checkpoint"))
      ->excludes(cmd->get_option("--layers"))
      ->excludes(cmd->get_option("--deployed"));
  cmd->callback([a] {
    if (!a->model.empty()) return eval_export(*a);
    auto [session, spec] = open_subnet(a->target);
    eval::Evaluator evaluator(session.config, session.net, session.data);
    eval::EvalOptions opts;
    opts.deployed = a->deployed;
    opts.latency = !a->no_latency;
    if (opts.latency) use_run_latency_anchor(evaluator, session.net->space(), session.config.output.dir, /*write=*/false);
    const auto r = evaluator.evaluate(spec, a->split, opts);

    print_result(*a, a->target.subnet + (a->target.bits.empty() ? "" : " @" + a->target.bits), r);
    if (a->layers) std::printf("\n%s", layer_table(r.layers, a->format).c_str());
    if (!a->json_out.empty()) core::write_file_atomic(a->json_out, eval_result_json(r).dump(2) + "\n");
  });
}

}  // namespace qnas::cli
