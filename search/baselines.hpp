#pragma once
// Uniform-policy baselines: the subnets a joint search must beat (SimQ-NAS,
// REFERENCES.md 1, compares with the fully INT8 model). A baseline is an
// architecture with one policy on every layer: int8 (W8A8 RTN), w4a8 (W4A8
// RTN) or fp32, where the space holds that policy; a layer whose weight bits
// have one choice only (quant.keep_8bit) keeps it. The initial population
// holds the baselines of the largest and smallest architectures and of some
// random ones (search.baselines, search.baseline_fraction); after each
// iteration they are compared with everything validated (baselines.csv).

#include <string>
#include <unordered_set>
#include <vector>

#include "search/objectives.hpp"
#include "search/space.hpp"
#include "src/core/rng.hpp"

namespace qnas::search {

struct UniformPolicy {
  std::string name;  // int8 | w4a8 | fp32
  int weight_bits = 32, act_bits = 32;
};

/// The uniform policies of {int8, w4a8, fp32} this space holds, in that order.
std::vector<UniformPolicy> uniform_policies(const Space& space);

/// Baseline genomes, none in `exclude` (which gains them): every uniform
/// policy on the largest, then the smallest architecture, then `random_archs`
/// random architectures with the policies in turn.
std::vector<Genome> baseline_genomes(const Space& space, size_t random_archs, core::Rng& rng,
                                     std::unordered_set<std::string>& exclude);

/// "int8 largest", "fp32 smallest", "w4a8 random"; empty when the genome's
/// policy is not uniform.
std::string baseline_label(const Space& space, const Genome& genome);

/// One baseline against every feasible validated row.
struct BaselineComparison {
  int row = 0;            // index into the rows
  std::string label;
  bool on_front = false;
  int dominated_by = 0;   // validated rows that dominate it
  int no_loss_rows = 0;   // rows at least as good in every maximised objective (itself included)
  // Per minimised objective: baseline / best among the no-loss rows (>= 1),
  // and the row reaching it.
  std::vector<std::string> ratio_names;
  std::vector<double> ratios;
  std::vector<int> ratio_rows;
};

/// The baselines among `genomes` (rows of iteration 0 whose policy is
/// uniform), each compared with the feasible rows.
std::vector<BaselineComparison> compare_baselines(const Space& space, const Goals& goals,
                                                  const std::vector<Genome>& genomes,
                                                  const std::vector<int>& iterations,
                                                  const std::vector<MetricValues>& metrics);

}  // namespace qnas::search
