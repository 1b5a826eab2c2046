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

std::string layer_table(const std::vector<supernet::LayerInfo>& layers, const std::string& format) {
  core::Table t({"layer", "kind", "in", "out", "k", "stride", "out_hw", "policy", "macs", "bytes"});
  for (const auto& l : layers)
    t.add({l.name, l.kind, std::to_string(l.in_channels), std::to_string(l.out_channels), std::to_string(l.kernel),
           std::to_string(l.stride), std::to_string(l.out_h) + "x" + std::to_string(l.out_w),
           l.compressible ? quant::policy_label(l.policy) : "fp32", std::to_string(eval::layer_macs(l)),
           std::to_string(eval::layer_bytes(l))});
  return t.render(format);
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
    if (opts.latency) use_run_latency_anchor(evaluator, session.net->space(), session.config.output.dir, /*write=*/false);
    const auto r = evaluator.evaluate(spec, a->split, opts);

    std::printf("%s", eval_result_table(a->target.subnet + (a->target.bits.empty() ? "" : " @" + a->target.bits), r, a->format).c_str());
    if (a->format != "json")
      for (const auto& note : r.notes) std::printf("note: %s\n", note.c_str());
    std::string phases;
    for (const auto& [name, sec] : r.phase_s) phases += " " + name + " " + core::fixed(sec, 2) + "s";
    std::fprintf(stderr, "eval phases:%s\n", phases.c_str());
    if (a->layers) std::printf("\n%s", layer_table(r.layers, a->format).c_str());
    if (!a->json_out.empty()) core::write_file_atomic(a->json_out, eval_result_json(r).dump(2) + "\n");
  });
}

}  // namespace qnas::cli
