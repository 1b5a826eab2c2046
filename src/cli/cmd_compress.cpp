#include <cstdio>

#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/sensitivity.hpp"

namespace qnas::cli {

namespace {

struct CompressArgs {
  SubnetArgs target;
  std::string method = "rtn";
  double group = 0, alpha = -1, tune_steps = -1, tune_lr = -1, rank_rate = -1;
  std::vector<std::string> keep_8bit = {"stem", "classifier"};  // admm_cp / cp_rtn: layers kept at W8 (RTN), as in the paper
  bool asymmetric = false, act_order = false, per_tensor = false;
  double budget_bytes = 0, budget_bops = 0;  // --method mixed
  std::string json_out, format = "text";
};

bool mixed(const CompressArgs& a) { return a.method == "mixed"; }
bool factorizing(const CompressArgs& a) { return !mixed(a) && quant::method_traits(a.method).factorizes; }

// admm_cp / cp_rtn: the --keep-8bit layers at 8-bit weights by round-to-nearest
// (REFERENCES.md §5 keeps the first conv and the classifier so). Names every
// layer that does not exist.
void keep_8bit(supernet::SubnetSpec& spec, const std::vector<std::string>& layers) {
  for (const auto& name : layers) {
    if (name.empty()) continue;
    const auto it = spec.policy.find(name);
    QNAS_CHECK(it != spec.policy.end(), "qnas compress --keep-8bit: no layer '", name,
               "' in this subnet; expected compressible layer names such as stem, classifier");
    it->second = {8, it->second.act_bits, "rtn", {}};
  }
}

// The one policy the command applies to every layer, checked before any data loads.
quant::LayerPolicy policy_of(const CompressArgs& a) {
  auto p = eval::parse_bits(a.target.bits);
  p.method = a.method;
  if (a.group > 0) p.params["group"] = a.group;
  if (a.asymmetric) p.params["sym"] = 0;
  if (a.act_order) p.params["act_order"] = 1;
  if (a.per_tensor) p.params["per_tensor"] = 1;
  if (a.alpha >= 0) p.params["alpha"] = a.alpha;
  if (a.tune_steps >= 0) p.params["tune_steps"] = a.tune_steps;
  if (a.tune_lr >= 0) p.params["tune_lr"] = a.tune_lr;
  if (a.rank_rate >= 0) p.params["rank_rate"] = a.rank_rate;
  quant::check_policy(p, "qnas compress");
  return p;
}

std::string grid_label(const deploy::LayerCompression& l) {
  if (l.rank > 0) return "rank " + std::to_string(l.rank);
  return l.group > 0 ? "group " + std::to_string(l.group) : "channel";
}

std::string layer_table(const std::vector<deploy::LayerCompression>& layers, const std::string& format) {
  core::Table t({"layer", "method", "bits", "grid", "rtn_error", "error", "ratio", "method_s"});
  for (const auto& l : layers)
    t.add({l.layer, l.method, std::to_string(l.weight_bits), grid_label(l),
           core::significant(l.rtn_error, 4), core::significant(l.error, 4),
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

eval::Budget budget_of(const CompressArgs& a) {
  QNAS_CHECK((a.budget_bytes > 0) != (a.budget_bops > 0),
             "qnas compress --method mixed: expected exactly one of --budget-bytes N or --budget-bops N");
  return a.budget_bytes > 0 ? eval::Budget{"model_bytes", a.budget_bytes} : eval::Budget{"bops", a.budget_bops};
}

std::string allocation_table(const eval::SensitivityReport& report, const eval::MixedPrecision& m,
                             const std::string& format) {
  core::Table t({"layer", "bits", "score_at_bits"});
  const auto& layers = report.passes.front().layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int bits = m.allocation.bits[i];
    double score = 0;
    for (const auto& pass : report.passes)
      if (pass.weight_bits == bits) score = pass.layers[i].score;
    t.add({layers[i].layer, std::to_string(bits), core::significant(score, 4)});
  }
  return t.render(format);
}

// --method mixed: per-layer bits from the sensitivity passes under the budget.
supernet::SubnetSpec allocate(const CompressArgs& a, const eval::Evaluator& evaluator, const supernet::SubnetSpec& spec) {
  const auto budget = budget_of(a);
  const auto choices = eval::parse_bit_choices(a.target.bits);
  const auto report = eval::measure_sensitivity(evaluator, spec, choices.weight_bits, choices.act_bits);
  const auto m = eval::allocate_mixed(report, budget);
  double seconds = report.prepare_seconds;
  for (const auto& p : report.passes) seconds += p.seconds;
  if (a.format == "text")
    std::printf("mixed precision: %s budget %.0f, allocated %.0f (fixed %.0f + weights %.0f); sensitivity passes "
                "%.2fs\n", budget.metric.c_str(), budget.value, m.fixed + m.allocation.cost, m.fixed,
                m.allocation.cost, seconds);
  std::printf("%s\n", allocation_table(report, m, a.format).c_str());
  return m.spec;
}

// What the method's phase cost, when it had one (round-to-nearest has none).
void print_method_time(const eval::EvalResult& r, const quant::LayerPolicy& policy, const core::QuantConfig& q) {
  const auto it = r.phase_s.find("compress");
  if (it == r.phase_s.end()) return;
  if (quant::method_traits(policy.method).smooths_inputs)
    std::printf("method time %.2fs (channel ranges from %d calibration images, smoothing, activation recalibration)\n",
                it->second, q.hessian_images);
  else
    std::printf("method time %.2fs (Hessians from %d calibration images at %d samples per column, the methods, "
                "activation recalibration)\n", it->second, q.hessian_images, q.hessian_samples_per_column);
}

void run_compress(const CompressArgs& a) {
  if (mixed(a)) {
    budget_of(a);
    eval::parse_bit_choices(a.target.bits);
  }
  const auto policy = mixed(a) ? quant::LayerPolicy{} : policy_of(a);
  auto target = a.target;
  if (mixed(a)) target.bits.clear();  // bit choices, not one policy: the allocation sets every layer's
  auto [session, spec] = open_subnet(target);
  eval::Evaluator evaluator(session.config, session.net, session.data);
  spec = mixed(a) ? allocate(a, evaluator, spec) : supernet::with_uniform_policy(spec, policy);
  const auto per_channel = drop_indivisible_groups(spec, *session.net, int64_t(a.group));
  if (factorizing(a)) keep_8bit(spec, a.keep_8bit);
  eval::EvalOptions opts;
  opts.latency = true;
  const auto r = evaluator.evaluate(spec, "test", opts);
  const auto label = a.target.subnet + " @" + (mixed(a) ? "mixed " + a.target.bits : quant::policy_label(policy));
  std::printf("%s", eval_result_table(label, r, a.format).c_str());
  if (a.format == "text") {
    print_method_time(r, policy, session.config.quant);
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
  auto methods = quant::method_names();
  methods.push_back("mixed");
  cmd->add_option("--method", a->method,
                  "rtn | gptq | decoupleq | smoothquant | admm_cp | cp_rtn | mixed (per-layer bits by sensitivity under a budget; "
                  "--bits lists the choices, e.g. 2,3,4,8/8)")
      ->check(CLI::IsMember(methods))->capture_default_str();
  cmd->add_option("--budget-bytes", a->budget_bytes, "mixed: the deployed model_bytes to stay within");
  cmd->add_option("--budget-bops", a->budget_bops, "mixed: the BOPs to stay within");
  cmd->add_option("--group", a->group, "input columns per weight group (default: one group per output channel)");
  cmd->add_flag("--asymmetric", a->asymmetric, "rtn / gptq: asymmetric weight grid (decoupleq always has offsets)");
  cmd->add_flag("--act-order", a->act_order, "gptq: quantize columns in decreasing Hessian diagonal");
  cmd->add_flag("--per-tensor", a->per_tensor, "rtn / gptq / smoothquant: one weight scale per layer (default: per channel)");
  cmd->add_option("--alpha", a->alpha, "smoothquant: migration strength in [0, 1]");
  cmd->add_option("--tune-steps", a->tune_steps, "decoupleq: second stage, Adam steps per block (default 100; 0: off)");
  cmd->add_option("--tune-lr", a->tune_lr, "decoupleq: second stage learning rate (default 1e-4)");
  cmd->add_option("--rank-rate", a->rank_rate,
                  "admm_cp / cp_rtn: CP rank = numel / (sum of dims) / rate (default 2; >= 1)");
  cmd->add_option("--keep-8bit", a->keep_8bit,
                  "admm_cp / cp_rtn: comma-separated layers kept at 8-bit weights by RTN ('' for none)")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--json", a->json_out, "write spec, metrics and per-layer errors as JSON to this file");
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_compress(*a); });
}

}  // namespace qnas::cli
