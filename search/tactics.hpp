#pragma once
// Search tactics behind one interface. A tactic proposes the genomes to
// validate in each iteration; everything it knows comes from the validated
// history, so a resumed search recomputes its state exactly from
// evaluations.csv. Iteration 0 is always `population` genomes: the uniform
// baselines (search/baselines.hpp, search.baselines), the sensitivity-seeded
// ones (search.seed_from_sensitivity), and random ones.
//
//   random  uniform samples, `population` per iteration
//   ga      single-objective elitist GA (constraint violation first)
//   nsga2   NSGA-II on validated candidates: `population` offspring per
//           iteration, survival over parents and offspring
//   linas   LINAS (Cummings et al. 2022, REFERENCES.md 1): per iteration,
//           refit one predictor per objective/constraint metric on all
//           validated rows, run NSGA-II (2 objectives), U-NSGA-III (3) or a
//           GA (1) on predictions only for `inner_evaluations`, and propose
//           its final population minus what was already validated (or,
//           with search.linas_batch, that many of it, one at a time by the
//           largest predicted hypervolume gain over the validated rows);
//           search.linas_initial sets iteration 0's size apart from the
//           inner population's

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "predictors/predictor.hpp"
#include "search/evolution.hpp"
#include "search/objectives.hpp"
#include "search/sensitivity_prior.hpp"
#include "search/space.hpp"

namespace qnas::eval {
class LatencyModel;
}
#include "src/core/config.hpp"

namespace qnas::supernet {
class SupernetImpl;
}

namespace qnas::search {

/// Everything validated so far, in row order.
struct History {
  std::vector<Individual> validated;   // genome, minimisation objectives, violation
  std::vector<int> iteration;          // per row
  std::vector<MetricValues> metrics;   // per row
  std::unordered_set<std::string> keys;  // genome keys

  void add(Individual ind, int iteration, MetricValues metrics);
  size_t size() const { return validated.size(); }
};

/// One predictor fit of LINAS, for the log.
struct PredictorFit {
  int iteration = 0;
  std::string metric;
  predictors::CvReport report;
  double fit_s = 0;
};

/// Exact cost proxies of a genome (params, macs, bops, model_bytes), for
/// LINAS's optional extra features.
using ProxyFn = std::function<MetricValues(const Genome&)>;

/// params, macs, bops, model_bytes of each genome from the supernet's layer
/// shapes (Supernet::layer_infos), without extracting weights. `net` must
/// outlive the function. model_bytes counts one activation range per
/// quantized layer input, a few bytes off the deployed graph's count, and
/// not the fp32 factors of SmoothQuant's scale nodes (which depend on the
/// graph around each layer).
/// With a sensitivity prior (search/sensitivity_prior.hpp) it adds
/// `sensitivity`: the sum of the prior's score over the compressible layers;
/// with a latency model (src/eval/latency_model.hpp) `latency_est_ms`, its
/// estimate.
ProxyFn shape_proxies(const Space& space, const supernet::SupernetImpl& net, SensitivityPrior prior = {},
                      std::shared_ptr<const eval::LatencyModel> latency = nullptr);

struct TacticContext {
  const Space& space;
  Goals goals;
  core::SearchConfig cfg;
  std::function<void(const PredictorFit&)> on_fit;  // may be empty
  ProxyFn proxies;                                   // required when cfg.proxy_features is not empty
  SeedFn seeds;                                      // required when cfg.seed_from_sensitivity > 0
  // linas: what its refit predicted for each genome it proposes (may be empty).
  std::function<void(const Genome&, const MetricValues&)> on_predict;
};

class Tactic {
 public:
  virtual ~Tactic() = default;
  /// At most `budget` genomes, none in `h.keys`, canonical, distinct.
  virtual std::vector<Genome> propose(int iteration, const History& h, size_t budget, core::Rng& rng) = 0;
  /// Row indices of the current population (nsga2, ga), for state.json.
  virtual std::vector<int> population(int iteration, const History& h) const { return {}; }
};

std::unique_ptr<Tactic> make_tactic(const TacticContext& ctx);

/// The survival scheme of LINAS's inner search for this many objectives.
Survival inner_survival(size_t objectives);

}  // namespace qnas::search
