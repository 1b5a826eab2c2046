#include <algorithm>
#include <cstdio>
#include <memory>

#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/core/task_queue.hpp"
#include "src/eval/queue.hpp"
#include "src/eval/recipe.hpp"

namespace qnas::cli {

namespace {

struct RecipeArgs {
  SubnetArgs target;
  eval::RecipeGrid grid;  // acts, weights, observers; alphas come from alpha_text
  std::vector<std::string> alpha_text = {"none", "0", "0.25", "0.5", "0.75"};
  eval::RecipeOptions options;
  std::string json_out, format = "text";
};

std::vector<double> parse_alphas(const std::vector<std::string>& texts) {
  std::vector<double> out;
  for (const auto& a : texts) {
    if (a == "none") {
      out.push_back(-1);
      continue;
    }
    size_t used = 0;
    double v = -1;
    try {
      v = std::stod(a, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    QNAS_CHECK(used == a.size() && v >= 0 && v <= 1, "qnas recipe --alphas: '", a,
               "'; expected SmoothQuant alphas in [0, 1] or none, comma-separated");
    out.push_back(v);
  }
  return out;
}

eval::RecipeGrid grid_of(const RecipeArgs& a) {
  auto g = a.grid;
  g.alphas = parse_alphas(a.alpha_text);
  eval::check_grid(g);
  return g;
}

std::string status_of(const eval::RecipeSearch& s, size_t i) {
  const auto& r = s.rows[i];
  if (int(i) == s.winner) return "winner";
  if (!r.ok) return "failed: " + r.reason;
  return r.within_bound ? "within bound" : r.reason;
}

std::string alpha_text(double alpha) { return alpha < 0 ? "none" : core::significant(alpha, 3); }

std::string recipe_table(const eval::RecipeSearch& s, const std::string& format) {
  core::Table t({"acts", "weights", "observer", "alpha", "smoothed", "top1", "drop", "latency_ms", "speedup",
                 "model_bytes", "memory_reduction", "status"});
  t.add({"fp32", "-", "-", "-", "-", core::fixed(s.fp32.top1, 2), "0", core::fixed(s.fp32.latency_ms, 3), "1",
         std::to_string(int64_t(s.fp32.model_bytes)), "0", "reference"});
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const auto& r = s.rows[i];
    const auto& c = r.recipe;
    const std::string smoothed = c.alpha < 0 || !r.ok ? "-" : std::to_string(r.smoothed.size()) + " layers";
    if (!r.ok) {
      t.add({c.acts, c.weights, c.observer, alpha_text(c.alpha), smoothed, "", "", "", "", "", "", status_of(s, i)});
      continue;
    }
    t.add({c.acts, c.weights, c.observer, alpha_text(c.alpha), smoothed, core::fixed(r.top1, 2),
           core::fixed(s.fp32.top1 - r.top1, 2), core::fixed(r.latency_ms, 3), core::fixed(r.speedup, 2) + "x",
           std::to_string(int64_t(r.model_bytes)), core::fixed(100 * r.memory_reduction, 1) + "%", status_of(s, i)});
  }
  return t.render(format);
}

nlohmann::json row_json(const eval::RecipeRow& r) {
  return {{"acts", r.recipe.acts}, {"weights", r.recipe.weights}, {"observer", r.recipe.observer},
          {"alpha", r.recipe.alpha < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.recipe.alpha)},
          {"smoothed", r.smoothed}, {"ok", r.ok}, {"reason", r.reason}, {"top1", r.top1}, {"latency_ms", r.latency_ms},
          {"model_bytes", r.model_bytes}, {"speedup", r.speedup}, {"memory_reduction", r.memory_reduction},
          {"within_bound", r.within_bound}};
}

void run_recipe(const RecipeArgs& a) {
  const auto grid = grid_of(a);  // before anything loads
  auto [session, spec] = open_subnet(a.target, /*distributed=*/true);
  std::unique_ptr<core::TaskQueue> queue;  // several processes: rank 0 measures fp32, the workers the recipes
  if (session.world->size() > 1) queue = std::make_unique<core::TaskQueue>(session.world, session.config.dist, "recipe");
  if (queue && !session.world->coordinator()) {
    eval::pin_and_report(*queue, *session.world, session.config.dist,
                         std::max(session.threads, session.config.latency.threads));
    return eval::serve_recipes(*queue, session.config, session.net, session.data, spec, grid, a.options);
  }
  if (queue)
    for (const auto& p : eval::worker_pinning(*session.world, queue->name()))
      std::fprintf(stderr, "recipe: worker %s\n", p.c_str());
  const auto s = eval::search_recipes(session.config, session.net, session.data, spec, grid, a.options, queue.get());
  if (queue) queue->close();
  std::printf("%s", recipe_table(s, a.format).c_str());
  if (a.format == "text") {
    std::printf("split %s; bound: top-1 within %g points of fp32 (%.2f)\n", s.split.c_str(), s.max_top1_drop,
                s.fp32.top1);
    if (s.winner < 0) {
      std::printf("no recipe within the bound\n");
    } else {
      const auto& w = s.rows[size_t(s.winner)];
      std::printf("winner: %s, top-1 %.2f (drop %.2f), %.2fx faster than fp32 (%.3f vs %.3f ms), model %.1f%% smaller\n",
                  w.recipe.label().c_str(), w.top1, s.fp32.top1 - w.top1, w.speedup, w.latency_ms,
                  s.fp32.latency_ms, 100 * w.memory_reduction);
    }
  }
  if (!a.json_out.empty()) {
    nlohmann::json j = {{"split", s.split}, {"max_top1_drop", s.max_top1_drop}, {"fp32", row_json(s.fp32)},
                        {"winner", s.winner}, {"spec", supernet::to_json(spec)}};
    auto& rows = j["rows"] = nlohmann::json::array();
    for (const auto& r : s.rows) rows.push_back(row_json(r));
    core::write_file_atomic(a.json_out, j.dump(2) + "\n");
  }
}

}  // namespace

void register_recipe(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "recipe", "int8 recipe search: measure top-1, latency and size of every recipe in a grid (static/dynamic "
                "activations, per-channel/per-tensor weights, observer, SmoothQuant alpha) on one subnet and keep "
                "the fastest within --max-top1-drop of fp32");
  auto a = std::make_shared<RecipeArgs>();
  add_subnet_args(*cmd, a->target);
  cmd->remove_option(cmd->get_option("--bits"));
  cmd->add_option("--max-top1-drop", a->options.max_top1_drop, "points of top-1 below fp32 a recipe may lose")
      ->capture_default_str();
  cmd->add_option("--split", a->options.split, "split top-1 is measured on: val | test")
      ->check(CLI::IsMember({"val", "test"}))->capture_default_str();
  cmd->add_option("--images", a->options.max_images, "images of the split (0: all)")->capture_default_str();
  cmd->add_option("--acts", a->grid.acts, "activation quantization: static, dynamic (comma-separated)")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--weights", a->grid.weights, "weight scales: channel, tensor")->delimiter(',')->capture_default_str();
  cmd->add_option("--observers", a->grid.observers, "static activation observers: minmax, percentile, mse")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--alphas", a->alpha_text, "SmoothQuant alphas in [0, 1], none: no smoothing")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--json", a->json_out, "write every row and the winner as JSON to this file");
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_recipe(*a); });
}

}  // namespace qnas::cli
