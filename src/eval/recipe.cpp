#include "src/eval/recipe.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>

#include "src/core/error.hpp"
#include "src/core/progress.hpp"
#include "src/core/task_queue.hpp"
#include "src/deploy/smooth.hpp"

namespace qnas::eval {

std::string Recipe::label() const {
  std::string s = acts + " " + weights;
  if (acts == "static") s += " " + observer;
  char alpha_text[32];
  std::snprintf(alpha_text, sizeof alpha_text, " sq%g", alpha);
  return s + (alpha < 0 ? " plain" : alpha_text);
}

namespace {

template <class T>
void check_entries(const std::vector<T>& entries, const std::vector<T>& legal, const char* flag, const char* expected) {
  QNAS_CHECK(!entries.empty(), "qnas recipe ", flag, ": empty; expected ", expected);
  for (const auto& e : entries)
    QNAS_CHECK(std::find(legal.begin(), legal.end(), e) != legal.end(), "qnas recipe ", flag, ": '", e,
               "'; expected ", expected);
}

}  // namespace

void check_grid(const RecipeGrid& g) {
  check_entries<std::string>(g.acts, {"static", "dynamic"}, "--acts", "static, dynamic");
  check_entries<std::string>(g.weights, {"channel", "tensor"}, "--weights", "channel, tensor");
  check_entries<std::string>(g.observers, {"minmax", "percentile", "mse"}, "--observers", "minmax, percentile, mse");
  QNAS_CHECK(!g.alphas.empty(), "qnas recipe --alphas: empty; expected values in [0, 1] or none");
  for (double a : g.alphas)
    QNAS_CHECK(a < 0 || a <= 1, "qnas recipe --alphas: ", a, "; expected values in [0, 1] or none");
}

std::vector<Recipe> expand(const RecipeGrid& g) {
  std::vector<Recipe> out;
  for (const auto& acts : g.acts)
    for (const auto& weights : g.weights)
      for (double alpha : g.alphas) {
        if (acts == "dynamic") {
          out.push_back({acts, weights, "-", alpha});
          continue;
        }
        for (const auto& observer : g.observers) out.push_back({acts, weights, observer, alpha});
      }
  return out;
}

supernet::SubnetSpec recipe_spec(const supernet::SubnetSpec& arch, const Recipe& r,
                                 const std::vector<supernet::LayerInfo>& layers, const std::set<std::string>* smoothed) {
  auto spec = arch;
  for (const auto& l : layers) {
    if (!l.compressible) continue;
    const bool smooth = r.alpha >= 0 && (!smoothed || smoothed->count(l.name));
    quant::LayerPolicy p{8, 8, smooth ? "smoothquant" : "rtn", {}};
    if (smooth) p.params["alpha"] = r.alpha;
    if (r.weights == "tensor") p.params["per_tensor"] = 1;
    if (r.acts == "dynamic") {
      if (l.kind == "linear") p.params["dynamic"] = 1;
      else p = {32, 32, "rtn", {}};
    }
    quant::check_policy(p, "recipe '" + r.label() + "', layer " + l.name);
    spec.policy.at(l.name) = p;
  }
  return spec;
}

std::set<std::string> foldable_smoothing_layers(const supernet::Subnet& folded,
                                                const std::map<std::string, quant::LayerPolicy>& policy) {
  folded->set_policies(policy);
  const auto graph = deploy::build_graph(*folded);
  std::set<std::string> out;
  for (const auto& n : graph.nodes)
    if (n.has_weight() && policy.count(n.name) && deploy::input_division_folds(graph, n.name)) out.insert(n.name);
  return out;
}

namespace {

// Every recipe shares the architecture: BN is recalibrated and folded once
// (`folded`), each recipe builds its own graph on it.
RecipeRow measure(const Evaluator& evaluator, const supernet::Subnet& folded, const supernet::SubnetSpec& spec,
                  const RecipeOptions& o) {
  EvalOptions opts;
  opts.latency = true;
  opts.max_images = o.max_images;
  const auto r = evaluator.evaluate(folded, spec, o.split, opts);
  RecipeRow row;
  row.ok = true;
  row.top1 = r.metrics.at("top1");
  row.latency_ms = r.metrics.at("latency_ms");
  row.model_bytes = r.metrics.at("model_bytes");
  return row;
}

// SmoothQuant's placement depends on the weight scales alone (not on the
// observer or alpha): one graph per `weights` value, kept by it.
using Placements = std::map<std::string, std::set<std::string>>;

// The row of one recipe; a failure (a recipe the graph or runtime refuses) is
// a row with its reason.
RecipeRow measure_recipe(const Evaluator& evaluator, const supernet::Subnet& folded, const supernet::SubnetSpec& arch,
                         const Recipe& recipe, const std::vector<supernet::LayerInfo>& layers, const RecipeOptions& o,
                         Placements& placements) {
  RecipeRow row;
  try {
    if (recipe.acts == "dynamic" && recipe.alpha >= 0)
      QNAS_THROW("SmoothQuant folds its division into static activation ranges; expected alpha none with dynamic");
    std::set<std::string> smoothed;
    if (recipe.alpha >= 0) {
      if (!placements.count(recipe.weights)) {
        auto plain = recipe;
        plain.alpha = -1;
        placements[recipe.weights] = foldable_smoothing_layers(folded, recipe_spec(arch, plain, layers).policy);
      }
      smoothed = placements.at(recipe.weights);
      // Smoothing nothing would measure the plain recipe again under another name.
      QNAS_CHECK(!smoothed.empty(), "no layer's SmoothQuant division folds into its producer with ", recipe.weights,
                 " weights: the same model as alpha none");
    }
    row = measure(evaluator, folded, recipe_spec(arch, recipe, layers, &smoothed), o);
    row.smoothed.assign(smoothed.begin(), smoothed.end());
  } catch (const std::exception& e) {
    row.ok = false;
    row.reason = e.what();
  }
  row.recipe = recipe;
  return row;
}

// What measuring recipes on one architecture needs in one process: an
// evaluator per observer, the architecture folded once, SmoothQuant's
// placements. Built as the recipes ask for them.
class RecipeBench {
 public:
  RecipeBench(const core::Config& config, supernet::Supernet net, const core::Dataset& data,
              const supernet::SubnetSpec& arch, const RecipeOptions& o)
      : config_(config), net_(std::move(net)), data_(data), arch_(arch), o_(o), layers_(net_->layer_infos(arch)) {}

  RecipeRow fp32() {
    auto row = measure(evaluator("minmax"), folded(), supernet::with_uniform_policy(arch_, {}), o_);
    row.recipe = {"fp32", "-", "-", -1};
    return row;
  }
  RecipeRow recipe(const Recipe& r) { return measure_recipe(evaluator(r.observer), folded(), arch_, r, layers_, o_, placements_); }

  /// latency_ms of every evaluator made from now on scales by this anchor
  /// (rank 0's, so that workers' rows compare with its fp32 row).
  void set_latency_anchor_ms(double ms) { anchor_ms_ = ms; }
  double latency_anchor_ms() { return evaluator("minmax").latency_anchor_ms(); }

 private:
  const Evaluator& evaluator(const std::string& observer) {
    auto& e = evaluators_[observer];
    if (!e) {
      auto cfg = config_;
      if (observer != "-") cfg.quant.act_observer = observer;
      e = std::make_unique<Evaluator>(cfg, net_, data_);
      if (anchor_ms_ > 0) e->set_latency_anchor_ms(anchor_ms_);
    }
    return *e;
  }
  const supernet::Subnet& folded() {
    if (!folded_) folded_ = evaluator("minmax").prepare(supernet::with_uniform_policy(arch_, {})).subnet;
    return folded_;
  }

  core::Config config_;
  supernet::Supernet net_;
  const core::Dataset& data_;
  supernet::SubnetSpec arch_;
  RecipeOptions o_;
  std::vector<supernet::LayerInfo> layers_;
  std::map<std::string, std::unique_ptr<Evaluator>> evaluators_;  // by observer
  supernet::Subnet folded_{nullptr};
  Placements placements_;
  double anchor_ms_ = 0;
};

// A row as a worker sends it back (the recipe is the task's).
nlohmann::json row_json(const RecipeRow& r) {
  return {{"ok", r.ok}, {"reason", r.reason}, {"smoothed", r.smoothed}, {"top1", r.top1},
          {"latency_ms", r.latency_ms}, {"model_bytes", r.model_bytes}};
}

RecipeRow row_from_json(const std::string& text, const Recipe& recipe) {
  const auto j = nlohmann::json::parse(text);
  RecipeRow r;
  r.recipe = recipe;
  r.ok = j.at("ok").get<bool>();
  r.reason = j.at("reason").get<std::string>();
  r.smoothed = j.at("smoothed").get<std::vector<std::string>>();
  r.top1 = j.at("top1").get<double>();
  r.latency_ms = j.at("latency_ms").get<double>();
  r.model_bytes = j.at("model_bytes").get<double>();
  return r;
}

}  // namespace

RecipeSearch search_recipes(const core::Config& config, supernet::Supernet net, const core::Dataset& data,
                            const supernet::SubnetSpec& arch, const RecipeGrid& grid, const RecipeOptions& o,
                            core::TaskQueue* queue) {
  check_grid(grid);
  QNAS_CHECK(o.max_top1_drop >= 0, "qnas recipe --max-top1-drop ", o.max_top1_drop, "; expected >= 0 points");
  RecipeSearch s;
  s.max_top1_drop = o.max_top1_drop;
  s.split = o.split;
  RecipeBench bench(config, std::move(net), data, arch, o);
  const auto recipes = expand(grid);
  core::Progress progress("recipe", int64_t(recipes.size()) + 1, "recipe");
  s.fp32 = bench.fp32();
  const auto add = [&](size_t i, RecipeRow row) {
    progress.update(int64_t(i) + 2, int64_t(i) + 2, recipes[i].label());
    if (row.ok) {
      row.speedup = s.fp32.latency_ms / row.latency_ms;
      row.memory_reduction = 1 - row.model_bytes / s.fp32.model_bytes;
      row.within_bound = row.top1 >= s.fp32.top1 - o.max_top1_drop;
      if (!row.within_bound) row.reason = "top-1 drop above the bound";
    }
    s.rows.push_back(row);
    const auto& r = s.rows.back();
    if (r.within_bound && (s.winner < 0 || r.latency_ms < s.rows[size_t(s.winner)].latency_ms)) s.winner = int(i);
  };
  if (queue) {
    const double anchor = bench.latency_anchor_ms();
    std::vector<std::string> tasks;
    for (size_t i = 0; i < recipes.size(); ++i)
      tasks.push_back(nlohmann::json({{"recipe", i}, {"latency_anchor_ms", anchor}}).dump());
    queue->run(tasks, [&](size_t i, const core::TaskResult& r) { add(i, row_from_json(r.value, recipes[i])); });
  } else {
    for (size_t i = 0; i < recipes.size(); ++i) add(i, bench.recipe(recipes[i]));
  }
  progress.finish();
  return s;
}

void serve_recipes(core::TaskQueue& queue, const core::Config& config, supernet::Supernet net,
                   const core::Dataset& data, const supernet::SubnetSpec& arch, const RecipeGrid& grid,
                   const RecipeOptions& o) {
  check_grid(grid);
  RecipeBench bench(config, std::move(net), data, arch, o);
  const auto recipes = expand(grid);
  queue.serve([&](const std::string& task) {
    const auto j = nlohmann::json::parse(task);
    bench.set_latency_anchor_ms(j.at("latency_anchor_ms").get<double>());
    return row_json(bench.recipe(recipes.at(j.at("recipe").get<size_t>()))).dump();
  });
}

}  // namespace qnas::eval
