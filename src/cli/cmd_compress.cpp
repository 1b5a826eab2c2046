#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/eval/evaluator.hpp"

namespace qnas::cli {

namespace {

struct CompressArgs {
  SubnetArgs target;
  std::string method = "rtn";
  double group = 0, alpha = -1, tune_steps = -1, tune_lr = -1;
  bool asymmetric = false, act_order = false;
  std::string json_out, format = "text";
};

// The one policy the command applies to every layer, checked before any data loads.
quant::LayerPolicy policy_of(const CompressArgs& a) {
  auto p = eval::parse_bits(a.target.bits);
  p.method = a.method;
  if (a.group > 0) p.params["group"] = a.group;
  if (a.asymmetric) p.params["sym"] = 0;
  if (a.act_order) p.params["act_order"] = 1;
  if (a.alpha >= 0) p.params["alpha"] = a.alpha;
  if (a.tune_steps >= 0) p.params["tune_steps"] = a.tune_steps;
  if (a.tune_lr >= 0) p.params["tune_lr"] = a.tune_lr;
  quant::check_policy(p, "qnas compress");
  return p;
}

std::string significant(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string layer_table(const std::vector<deploy::LayerCompression>& layers, const std::string& format) {
  core::Table t({"layer", "method", "bits", "group", "rtn_error", "error", "ratio", "method_s"});
  for (const auto& l : layers)
    t.add({l.layer, l.method, std::to_string(l.weight_bits), l.group > 0 ? std::to_string(l.group) : "channel",
           significant(l.rtn_error), significant(l.error),
           core::fixed(l.rtn_error > 0 ? l.error / l.rtn_error : 1.0, 3), core::fixed(l.seconds, 3)});
  return t.render(format);
}

// A group size applies where it divides a layer's input columns; other
// layers keep one group per output channel. Returns those layers.
std::string drop_indivisible_groups(supernet::SubnetSpec& spec, const supernet::SupernetImpl& net, int64_t group) {
  std::string kept;
  if (group <= 0) return kept;
  for (const auto& l : net.layer_infos(spec)) {
    const int64_t cols = l.in_channels / l.groups * l.kernel * l.kernel;
    if (!l.compressible || cols % group == 0) continue;
    spec.policy.at(l.name).params.erase("group");
    kept += (kept.empty() ? "" : ", ") + l.name + " (" + std::to_string(cols) + ")";
  }
  return kept;
}

void run_compress(const CompressArgs& a) {
  const auto policy = policy_of(a);
  auto [session, spec] = open_subnet(a.target);
  spec = supernet::with_uniform_policy(spec, policy);
  const auto per_channel = drop_indivisible_groups(spec, *session.net, int64_t(a.group));
  eval::Evaluator evaluator(session.config, session.net, session.data);
  eval::EvalOptions opts;
  opts.latency = true;
  const auto r = evaluator.evaluate(spec, "test", opts);
  std::printf("%s", eval_result_table(a.target.subnet + " @" + quant::policy_label(policy), r, a.format).c_str());
  const auto compress_s = r.phase_s.count("compress") ? r.phase_s.at("compress") : 0.0;
  if (a.format == "text") {
    if (policy.method == "smoothquant")
      std::printf("method time %.2fs (channel ranges from %d calibration images, smoothing, activation "
                  "recalibration)\n", compress_s, session.config.quant.hessian_images);
    else
      std::printf("method time %.2fs (Hessians from %d calibration images at %d samples per column, the methods, "
                  "activation recalibration)\n",
                  compress_s, session.config.quant.hessian_images, session.config.quant.hessian_samples_per_column);
    for (const auto& note : r.notes) std::printf("note: %s\n", note.c_str());
    if (!per_channel.empty())
      std::printf("note: group %g does not divide the input columns of %s: one group per output channel there\n",
                  a.group, per_channel.c_str());
  }
  if (!r.compression.empty()) std::printf("\n%s", layer_table(r.compression, a.format).c_str());
  if (!a.json_out.empty()) core::write_file_atomic(a.json_out, eval_result_json(r).dump(2) + "\n");
}

}  // namespace

void register_compress(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compress", "apply one compression method to every layer of a subnet; report test top-1, size, BOPs, latency "
                  "and each layer's output error against round-to-nearest");
  auto a = std::make_shared<CompressArgs>();
  add_subnet_args(*cmd, a->target);
  cmd->get_option("--bits")->required();
  cmd->add_option("--method", a->method, "rtn | gptq | decoupleq | smoothquant")
      ->check(CLI::IsMember(quant::method_names()))->capture_default_str();
  cmd->add_option("--group", a->group, "input columns per weight group (default: one group per output channel)");
  cmd->add_flag("--asymmetric", a->asymmetric, "rtn / gptq: asymmetric weight grid (decoupleq always has offsets)");
  cmd->add_flag("--act-order", a->act_order, "gptq: quantize columns in decreasing Hessian diagonal");
  cmd->add_option("--alpha", a->alpha, "smoothquant: migration strength in [0, 1]");
  cmd->add_option("--tune-steps", a->tune_steps, "decoupleq: second stage, Adam steps per block (default 100; 0: off)");
  cmd->add_option("--tune-lr", a->tune_lr, "decoupleq: second stage learning rate (default 1e-4)");
  cmd->add_option("--json", a->json_out, "write spec, metrics and per-layer errors as JSON to this file");
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_compress(*a); });
}

}  // namespace qnas::cli
