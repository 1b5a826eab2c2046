#pragma once
// The sensitivity of one subnet's layers (`qnas sensitivity`'s score at each
// weight bit-width, measured on the largest subnet) as a prior for the
// search, two ways: an extra LINAS predictor feature (`search.proxy_features:
// [sensitivity]`: the sum over a candidate's layers of the score at its
// bits) and sensitivity-allocated genomes in the initial population
// (`search.seed_from_sensitivity`: that fraction of it). Layer names are
// shared by every subnet of a supernet, so the largest subnet's scores rank
// the layers of any candidate.

#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "search/space.hpp"
#include "src/core/rng.hpp"

namespace qnas::eval {
struct SensitivityReport;
}
namespace qnas::supernet {
class SupernetImpl;
}

namespace qnas::search {

struct SensitivityPrior {
  std::map<std::string, std::map<int, double>> score;  // layer -> weight bits -> score

  bool empty() const { return score.empty(); }
  /// The score of `layer` at `bits`; 0 at 32 bits (nothing quantized).
  /// Throws naming the layer and bits when they were not measured.
  double at(const std::string& layer, int bits) const;
};

SensitivityPrior prior_of(const eval::SensitivityReport& report);

/// n genomes not in `exclude` (added to it): each a random genome whose
/// weight bits are then allocated by the prior (quant::allocate_bits, the
/// weight choices of its layers) under a weight-bytes budget drawn uniformly
/// between its layers' smallest and largest.
using SeedFn = std::function<std::vector<Genome>(size_t n, core::Rng& rng, std::unordered_set<std::string>& exclude)>;

/// `net` must outlive the function.
SeedFn sensitivity_seeds(const Space& space, const supernet::SupernetImpl& net, SensitivityPrior prior);

}  // namespace qnas::search
