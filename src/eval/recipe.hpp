#pragma once
// The int8 recipe search (REFERENCES.md §2, search-optimized quantization):
// for one architecture, every recipe of a grid is deployed and measured for
// real (top-1 of the simulated graph, latency of the int8 runtime,
// model_bytes), and the fastest recipe whose top-1 is within
// `max_top1_drop` points of fp32's wins. A recipe is
//   acts      static (ranges calibrated once) | dynamic (linear layers
//             quantize their input per call, as PyTorch's quantize_dynamic;
//             conv layers stay fp32)
//   weights   channel | tensor (one symmetric scale per output channel or per layer)
//   observer  minmax | percentile | mse (static activation ranges)
//   alpha     SmoothQuant's migration strength, or none (plain RTN W8A8);
//             smoothed are the layers whose input division folds (the
//             paper's placement: no fp32 scale node), the rest plain
// A recipe that cannot be built or run gives a row with the reason.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "src/eval/evaluator.hpp"

namespace qnas::core {
class TaskQueue;
}

namespace qnas::eval {

struct Recipe {
  std::string acts = "static", weights = "channel", observer = "minmax";
  double alpha = -1;  // < 0: no smoothing
  std::string label() const;
};

struct RecipeGrid {
  std::vector<std::string> acts = {"static", "dynamic"};
  std::vector<std::string> weights = {"channel", "tensor"};
  std::vector<std::string> observers = {"minmax", "percentile", "mse"};
  std::vector<double> alphas = {-1, 0, 0.25, 0.5, 0.75};
};

/// Every combination; the observer only matters for static activations, so
/// dynamic recipes appear once per (weights, alpha) with observer "-".
std::vector<Recipe> expand(const RecipeGrid& grid);

/// Throws naming the flag and the accepted values on an unknown entry.
void check_grid(const RecipeGrid& grid);

/// The architecture `arch` under a recipe: W8A8 on every compressible layer
/// (dynamic: the linear layers only, the others fp32). SmoothQuant goes to
/// the layers in `smoothed` (all compressible layers when null), plain RTN
/// to the rest.
supernet::SubnetSpec recipe_spec(const supernet::SubnetSpec& arch, const Recipe& recipe,
                                 const std::vector<supernet::LayerInfo>& layers,
                                 const std::set<std::string>* smoothed = nullptr);

/// SmoothQuant's placement on `folded` (a BN-folded subnet) under `policy`:
/// the layers whose input division folds into a preceding LayerNorm or
/// layer, through attention, the class token or the mean over tokens
/// (deploy/smooth.hpp), so smoothing adds no scale node. `folded` holds
/// `policy` afterwards.
std::set<std::string> foldable_smoothing_layers(const supernet::Subnet& folded,
                                                const std::map<std::string, quant::LayerPolicy>& policy);

struct RecipeRow {
  Recipe recipe;
  bool ok = false;
  std::string reason;  // why the recipe failed, or why it was not chosen
  std::vector<std::string> smoothed;  // the layers SmoothQuant smoothed
  double top1 = 0, latency_ms = 0, model_bytes = 0;
  double speedup = 0, memory_reduction = 0;  // vs fp32: latency ratio, 1 - bytes ratio
  bool within_bound = false;
};

struct RecipeSearch {
  RecipeRow fp32;
  std::vector<RecipeRow> rows;
  int winner = -1;  // index into rows; -1 when none is within the bound
  double max_top1_drop = 1;
  std::string split;
};

struct RecipeOptions {
  double max_top1_drop = 1.0;  // points of top-1 below fp32
  std::string split = "val";
  int64_t max_images = 0;      // 0: the whole split
};

/// Measures fp32 and every recipe of the grid on `arch`; one evaluator per
/// observer (the config's quant.act_observer set to it). Progress on stderr.
/// With `queue` (rank 0 of several processes), rank 0 measures fp32 and the
/// workers serve_recipes runs measure the recipes, timed against rank 0's
/// latency reference.
RecipeSearch search_recipes(const core::Config& config, supernet::Supernet net, const core::Dataset& data,
                            const supernet::SubnetSpec& arch, const RecipeGrid& grid, const RecipeOptions& options,
                            core::TaskQueue* queue = nullptr);
/// Workers: the recipes of search_recipes, one task each, until rank 0 closes `queue`.
void serve_recipes(core::TaskQueue& queue, const core::Config& config, supernet::Supernet net,
                   const core::Dataset& data, const supernet::SubnetSpec& arch, const RecipeGrid& grid,
                   const RecipeOptions& options);

}  // namespace qnas::eval
