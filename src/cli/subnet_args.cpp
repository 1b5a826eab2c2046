#include "src/cli/subnet_args.hpp"

#include <tuple>

#include "src/core/table.hpp"
#include "src/eval/latency_model.hpp"
#include "supernet/checkpoint.hpp"

namespace qnas::cli {

namespace {

// Column, metric, decimals: the metrics the table shows when present.
const std::vector<std::tuple<std::string, std::string, int>> kColumns = {
    {"top1", "top1", 2}, {"top1_int8", "top1_deployed", 2}, {"max_logit_diff", "max_logit_diff", 4},
    {"params", "params", 0}, {"macs", "macs", 0}, {"bops", "bops", 0}, {"model_bytes", "model_bytes", 0},
    {"latency_ms", "latency_ms", 3}, {"p10", "latency_ms_p10", 3}, {"p90", "latency_ms_p90", 3},
    {"vs_int8_largest", "latency_ratio", 3},
    {"img_s", "throughput_img_s", 0}, {"peak_rss_mb", "peak_rss_bytes", -1}};

}  // namespace

std::string eval_result_table(const std::string& label, const eval::EvalResult& r, const std::string& format) {
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

void use_run_latency_anchor(eval::Evaluator& evaluator, const supernet::SpaceDesc& space, const std::string& dir,
                            bool write) {
  if (evaluator.config().latency.reference == "none") return;
  const auto path = eval::anchor_path_in(dir);
  bool measured = false;
  const double ms = eval::load_or_measure_anchor(evaluator, space, path, write, &measured);
  const std::string where = !measured ? "read from " + path : write ? "measured now into " + path : "measured now";
  std::fprintf(stderr, "latency reference: all-INT8 largest subnet %.3f ms, %s\n", ms, where.c_str());
}

nlohmann::json eval_result_json(const eval::EvalResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"name", l.name}, {"kind", l.kind}, {"in_channels", l.in_channels},
                      {"out_channels", l.out_channels}, {"kernel", l.kernel}, {"stride", l.stride},
                      {"policy", l.policy}, {"macs", eval::layer_macs(l)}, {"bytes", eval::layer_bytes(l)}});
  nlohmann::json j = {{"spec", supernet::to_json(r.spec)}, {"split", r.split},   {"images", r.images},
                      {"metrics", r.metrics},              {"eval_s", r.seconds}, {"phase_s", r.phase_s},
                      {"notes", r.notes},                  {"layers", layers}};
  if (!r.compression.empty()) {
    auto& c = j["compression"] = nlohmann::json::array();
    for (const auto& l : r.compression)
      c.push_back({{"layer", l.layer}, {"method", l.method}, {"weight_bits", l.weight_bits}, {"group", l.group}, {"rank", l.rank},
                   {"rtn_error", l.rtn_error}, {"error", l.error}, {"seconds", l.seconds}});
  }
  return j;
}

void add_subnet_args(CLI::App& cmd, SubnetArgs& a) {
  add_config_args(cmd, a.config);
  cmd.add_option("--subnet", a.subnet, "largest | smallest | random | SPEC.json")->capture_default_str();
  cmd.add_option("--bits", a.bits, "uniform policy W[/A] on every layer, e.g. 8/8 or 4/8 (W alone: weights only)");
  cmd.add_option("--checkpoint", a.checkpoint, "supernet checkpoint (default <output.dir>/supernet.pt)");
}

OpenSubnet open_subnet(const SubnetArgs& a, bool distributed) {
  const auto config = core::load_config(a.config.path, a.config.sets);
  std::optional<quant::LayerPolicy> bits;
  if (!a.bits.empty()) bits = eval::parse_bits(a.bits);
  eval::check_subnet_word(a.subnet);
  const std::string ckpt = a.checkpoint.empty() ? supernet::checkpoint_path(config.output.dir) : a.checkpoint;
  OpenSubnet out{eval::open_session(config, ckpt, /*queue=*/distributed), {}};
  if (!distributed) eval::require_one_process(out.session, "eval/export/compress (and sensitivity without --check)");
  out.spec = eval::choose_subnet(out.session.net->space(), a.subnet, bits, config.seed);
  return out;
}

}  // namespace qnas::cli
