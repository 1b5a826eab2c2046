#include <cstdio>
#include <memory>
#include <optional>

#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/core/task_queue.hpp"
#include "src/eval/sensitivity.hpp"

namespace qnas::cli {

namespace {

struct SensitivityArgs {
  SubnetArgs target;
  bool check = false;
  std::string check_split = "test";
  int64_t check_images = 0;
  std::string json_out, format = "text";
};

std::string db(double v) { return core::fixed(v, 2); }

std::string sci(double v) { return core::significant(v, 3); }

std::string ranking_table(const eval::SensitivityPass& pass, const eval::LayerDrops* drops, const std::string& format) {
  std::vector<std::string> head{"rank", "layer", "policy", "weight_sqnr_db", "weight_mse", "output_sqnr_db",
                                "sqnr_drop_db", "output_mse", "local_sqnr_db", "score"};
  if (drops) head.push_back("top1_drop");
  core::Table t(head);
  const auto order = quant::ranking(pass.layers);
  for (size_t r = 0; r < order.size(); ++r) {
    const auto& l = pass.layers[order[r]];
    std::vector<std::string> row{std::to_string(r + 1), l.layer, "w" + std::to_string(l.weight_bits) + "a" + std::to_string(l.act_bits),
                                 db(l.weight_sqnr_db), sci(l.weight_mse), db(l.output_sqnr_db), db(l.sqnr_drop_db),
                                 sci(l.output_mse), db(l.local_sqnr_db), sci(l.score)};
    if (drops) row.push_back(core::fixed(drops->drops.at(order[r]), 2));
    t.add(row);
  }
  return t.render(format);
}

// Spearman of each metric (oriented so that larger = more sensitive) with the measured drops.
std::vector<std::pair<std::string, double>> correlations(const eval::SensitivityPass& pass, const eval::LayerDrops& d) {
  const auto series = [&](auto f) {
    std::vector<double> v;
    for (const auto& l : pass.layers) v.push_back(f(l));
    return v;
  };
  using L = quant::LayerSensitivity;
  return {{"score", quant::spearman(series([](const L& l) { return l.score; }), d.drops)},
          {"-weight_sqnr_db", quant::spearman(series([](const L& l) { return -l.weight_sqnr_db; }), d.drops)},
          {"weight_mse", quant::spearman(series([](const L& l) { return l.weight_mse; }), d.drops)},
          {"-output_sqnr_db", quant::spearman(series([](const L& l) { return -l.output_sqnr_db; }), d.drops)},
          {"sqnr_drop_db", quant::spearman(series([](const L& l) { return l.sqnr_drop_db; }), d.drops)},
          {"output_mse", quant::spearman(series([](const L& l) { return l.output_mse; }), d.drops)},
          {"-local_sqnr_db", quant::spearman(series([](const L& l) { return -l.local_sqnr_db; }), d.drops)}};
}

nlohmann::json report_json(const eval::SensitivityReport& r, const eval::LayerDrops* drops) {
  nlohmann::json passes = nlohmann::json::array();
  for (const auto& p : r.passes) {
    nlohmann::json layers = nlohmann::json::array();
    for (size_t i = 0; i < p.layers.size(); ++i) {
      const auto& l = p.layers[i];
      layers.push_back({{"layer", l.layer}, {"weight_bits", l.weight_bits}, {"act_bits", l.act_bits},
                        {"weight_sqnr_db", l.weight_sqnr_db}, {"weight_mse", l.weight_mse},
                        {"input_sqnr_db", l.input_sqnr_db}, {"output_sqnr_db", l.output_sqnr_db},
                        {"sqnr_drop_db", l.sqnr_drop_db}, {"output_mse", l.output_mse},
                        {"local_sqnr_db", l.local_sqnr_db}, {"score", l.score}});
      if (drops) layers.back()["top1_drop"] = drops->drops.at(i);
    }
    passes.push_back({{"weight_bits", p.weight_bits}, {"act_bits", p.act_bits}, {"model_bytes", p.model_bytes},
                      {"seconds", p.seconds}, {"layers", layers}});
  }
  nlohmann::json j = {{"spec", supernet::to_json(r.spec)}, {"images", r.images},
                      {"prepare_s", r.prepare_seconds}, {"passes", passes}};
  if (drops) {
    j["check"] = {{"fp32_top1", drops->fp32_top1}};
    for (const auto& [metric, rho] : correlations(r.passes.front(), *drops)) j["check"]["spearman"][metric] = rho;
  }
  return j;
}

void run_sensitivity(const SensitivityArgs& a) {
  const auto bits = eval::parse_bits(a.target.bits.empty() ? "2" : a.target.bits);
  auto [session, spec] = open_subnet(a.target, /*distributed=*/a.check);
  eval::Evaluator evaluator(session.config, session.net, session.data);
  std::unique_ptr<core::TaskQueue> queue;  // several processes: the workers measure the check's layers
  if (session.world->size() > 1) queue = std::make_unique<core::TaskQueue>(session.world, session.config.dist, "sensitivity");
  if (queue && !session.world->coordinator())
    return eval::serve_layer_drops(*queue, evaluator, spec, bits, a.check_split, a.check_images);
  const auto report = eval::measure_sensitivity(evaluator, spec, {bits.weight_bits}, bits.act_bits);
  std::optional<eval::LayerDrops> drops;
  if (a.check) drops = eval::single_layer_drops(evaluator, spec, bits, a.check_split, a.check_images, queue.get());
  if (queue) queue->close();
  const auto& pass = report.passes.front();
  std::printf("%s", ranking_table(pass, drops ? &*drops : nullptr, a.format).c_str());
  if (a.format == "text") {
    std::printf("two passes (fp32 with one backward, w%da%d) over %lld calibration images: %.2fs (after %.2fs extraction, BN "
                "recalibration and the fp32 graph)\n",
                pass.weight_bits, pass.act_bits, static_cast<long long>(report.images), pass.seconds,
                report.prepare_seconds);
    if (drops) {
      std::printf("check: each layer alone at w%da%d on %s, fp32 top-1 %.2f; Spearman with the measured drop:",
                  bits.weight_bits, bits.act_bits, a.check_split.c_str(), drops->fp32_top1);
      for (const auto& [metric, rho] : correlations(pass, *drops)) std::printf(" %s %.3f", metric.c_str(), rho);
      std::printf("\n");
    }
  }
  if (!a.json_out.empty())
    core::write_file_atomic(a.json_out, report_json(report, drops ? &*drops : nullptr).dump(2) + "\n");
}

}  // namespace

void register_sensitivity(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sensitivity", "rank a subnet's layers by quantization sensitivity (QuantuneV2 local metrics: two inference "
                     "passes over the calibration images, fp32 and every layer at --bits)");
  auto a = std::make_shared<SensitivityArgs>();
  add_subnet_args(*cmd, a->target);
  cmd->get_option("--bits")->description("the candidate policy W[/A] every layer is quantized at (default 2)");
  cmd->add_flag("--check", a->check,
                "also measure the top-1 drop of quantizing each layer alone and its Spearman correlation with "
                "each metric (one evaluation per layer)");
  cmd->add_option("--check-split", a->check_split, "split of the check: val | test")
      ->check(CLI::IsMember({"val", "test"}))->capture_default_str();
  cmd->add_option("--check-images", a->check_images, "images of the check split (0: all)")->capture_default_str();
  cmd->add_option("--json", a->json_out, "write every pass's metrics (and the check) as JSON to this file");
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_sensitivity(*a); });
}

}  // namespace qnas::cli
