#include "search/tactics.hpp"

#include <cmath>

#include <algorithm>
#include <chrono>

#include "predictors/features.hpp"
#include "search/baselines.hpp"
#include "src/core/error.hpp"

namespace qnas::search {

void History::add(Individual ind, int it, MetricValues m) {
  keys.insert(genome_key(ind.genome));
  validated.push_back(std::move(ind));
  iteration.push_back(it);
  metrics.push_back(std::move(m));
}

Survival inner_survival(size_t objectives) {
  return objectives == 1 ? Survival::kGa : objectives == 2 ? Survival::kNsga2 : Survival::kNsga3;
}

namespace {

core::Rng stream(const core::SearchConfig& cfg, const char* name, int iteration) {
  return core::Rng(core::derive_seed(cfg.seed, name, uint64_t(iteration)));
}

// `size` genomes (`population` unless linas_initial says otherwise); at
// iteration 0 the uniform baselines first (from a stream of their own, so the
// random rest does not depend on them), then seed_from_sensitivity of them
// from the prior, the rest random.
std::vector<Genome> initial_population(const TacticContext& ctx, int iteration, const History& h, size_t budget,
                                       core::Rng& rng, size_t size) {
  auto exclude = h.keys;
  const size_t n = std::min(budget, size);
  std::vector<Genome> out;
  if (iteration == 0 && ctx.cfg.baselines) {
    auto baseline_rng = stream(ctx.cfg, "search/baselines", 0);
    const auto random_archs = size_t(std::llround(ctx.cfg.baseline_fraction * double(size)));
    out = baseline_genomes(ctx.space, random_archs, baseline_rng, exclude);
    if (out.size() > n) out.resize(n);
  }
  const auto seeded = iteration == 0 ? size_t(std::llround(ctx.cfg.seed_from_sensitivity * double(n))) : 0;
  if (seeded > 0) {
    QNAS_CHECK(ctx.seeds, "search.seed_from_sensitivity ", ctx.cfg.seed_from_sensitivity,
               " but this search has no sensitivity prior");
    auto from_prior = ctx.seeds(std::min(seeded, n - out.size()), rng, exclude);
    out.insert(out.end(), from_prior.begin(), from_prior.end());
  }
  auto rest = random_genomes(ctx.space, n - out.size(), rng, exclude);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

class RandomTactic : public Tactic {
 public:
  explicit RandomTactic(TacticContext ctx) : ctx_(std::move(ctx)) {}
  std::vector<Genome> propose(int iteration, const History& h, size_t budget, core::Rng& rng) override {
    return initial_population(ctx_, iteration, h, budget, rng, size_t(ctx_.cfg.population));
  }

 private:
  TacticContext ctx_;
};

// nsga2 and ga: a population of validated rows, replayed from the history.
class EvolutionTactic : public Tactic {
 public:
  EvolutionTactic(TacticContext ctx, Survival survival) : ctx_(std::move(ctx)), survival_(survival) {}

  std::vector<Genome> propose(int iteration, const History& h, size_t budget, core::Rng& rng) override {
    if (iteration == 0) return initial_population(ctx_, 0, h, budget, rng, size_t(ctx_.cfg.population));
    std::vector<Individual> parents;
    for (int i : population(iteration, h)) parents.push_back(h.validated[size_t(i)]);
    auto exclude = h.keys;
    return make_offspring(ctx_.space, parents, std::min(budget, size_t(ctx_.cfg.population)), survival_,
                          Operators::from_config(ctx_.cfg), rng, exclude);
  }

  // The population entering `iteration`: iteration 0's rows, then survival
  // over parents and each later iteration's rows.
  std::vector<int> population(int iteration, const History& h) const override {
    std::vector<int> pop;
    for (size_t i = 0; i < h.size(); ++i)
      if (h.iteration[i] == 0) pop.push_back(int(i));
    for (int it = 1; it < iteration; ++it) {
      std::vector<int> pool = pop;
      for (size_t i = 0; i < h.size(); ++i)
        if (h.iteration[i] == it) pool.push_back(int(i));
      std::vector<Individual> inds;
      for (int i : pool) inds.push_back(h.validated[size_t(i)]);
      auto rng = stream(ctx_.cfg, "search/survive", it);
      pop.clear();
      for (int k : survive(inds, size_t(ctx_.cfg.population), survival_, rng)) pop.push_back(pool[size_t(k)]);
    }
    return pop;
  }

 private:
  TacticContext ctx_;
  Survival survival_;
};

class LinasTactic : public Tactic {
 public:
  explicit LinasTactic(TacticContext ctx) : ctx_(std::move(ctx)), encoder_(ctx_.space.cardinalities()) {
    QNAS_CHECK(ctx_.cfg.proxy_features.empty() || ctx_.proxies,
               "linas: search.proxy_features set but this search has no proxy function");
    // Metrics the proxies give exactly need no predictor.
    if (ctx_.cfg.exact_proxies && ctx_.proxies) {
      core::Rng rng(0);
      for (const auto& [name, v] : ctx_.proxies(ctx_.space.random(rng))) exact_names_.push_back(name);
      for (const auto& name : ctx_.goals.metric_names())
        exact_ = exact_ || std::find(exact_names_.begin(), exact_names_.end(), name) != exact_names_.end();
    }
  }

  std::vector<Genome> propose(int iteration, const History& h, size_t budget, core::Rng& rng) override {
    if (iteration == 0) {
      const int size = ctx_.cfg.linas_initial > 0 ? ctx_.cfg.linas_initial : ctx_.cfg.population;
      return initial_population(ctx_, 0, h, budget, rng, size_t(size));
    }
    const auto models = fit_predictors(iteration, h);
    const auto predicted_names = predicted_metrics();
    const BatchObjective predicted = [&](std::vector<Individual>& batch) {
      std::vector<Genome> genomes;
      for (const auto& ind : batch) genomes.push_back(ind.genome);
      const Eigen::MatrixXd x = features(genomes);
      std::vector<Eigen::VectorXd> pred;
      for (const auto& m : models) pred.push_back(m.predict(x));
      for (size_t r = 0; r < batch.size(); ++r) {
        MetricValues values;
        if (exact_) values = ctx_.proxies(genomes[r]);
        for (size_t k = 0; k < predicted_names.size(); ++k) values[predicted_names[k]] = pred[k](Eigen::Index(r));
        batch[r].f = ctx_.goals.to_min(values);
        batch[r].violation = ctx_.goals.violation(values);
      }
    };
    const auto final_pop = evolve(ctx_.space, size_t(ctx_.cfg.population), ctx_.cfg.inner_evaluations,
                                  inner_survival(ctx_.goals.objectives.size()), Operators::from_config(ctx_.cfg),
                                  predicted, rng);
    std::vector<Individual> fresh;
    for (const auto& ind : final_pop)
      if (!h.keys.count(genome_key(ind.genome))) fresh.push_back(ind);
    std::vector<Genome> out;
    for (int i : batch_order(fresh, h, budget)) out.push_back(fresh[size_t(i)].genome);
    report_predictions(models, predicted_names, out);
    return out;
  }

 private:
  // Which of the not yet validated members of the inner search's final
  // population to validate, in order: all of them up to the budget (the
  // paper), or with search.linas_batch the batch that adds the most predicted
  // hypervolume to the validated rows, so small batches (more refits per
  // evaluation) still spread along the front.
  std::vector<int> batch_order(const std::vector<Individual>& fresh, const History& h, size_t budget) const {
    const size_t n = std::min(budget, ctx_.cfg.linas_batch > 0 ? size_t(ctx_.cfg.linas_batch) : fresh.size());
    if (ctx_.cfg.linas_batch == 0 || n >= fresh.size()) {
      std::vector<int> all(std::min(n, fresh.size()));
      for (size_t i = 0; i < all.size(); ++i) all[i] = int(i);
      return all;
    }
    std::vector<Point> validated, predicted;
    std::vector<bool> feasible;
    for (const auto& ind : h.validated)
      if (ind.violation == 0) validated.push_back(ind.f);
    for (const auto& ind : fresh) {
      predicted.push_back(ind.f);
      feasible.push_back(ind.violation == 0);
    }
    std::vector<Point> both = validated;
    both.insert(both.end(), predicted.begin(), predicted.end());
    return greedy_hypervolume_batch(validated, predicted, feasible, n, reference_beyond(both));
  }

  Eigen::MatrixXd features(const std::vector<Genome>& genomes) const {
    std::vector<predictors::Genome> masked;
    for (const auto& g : genomes) masked.push_back(ctx_.space.masked(g));
    Eigen::MatrixXd x = encoder_.encode(masked);
    if (ctx_.cfg.proxy_features.empty()) return x;
    Eigen::MatrixXd p(x.rows(), Eigen::Index(ctx_.cfg.proxy_features.size()));
    for (size_t r = 0; r < genomes.size(); ++r) {
      const auto values = ctx_.proxies(genomes[r]);
      for (size_t k = 0; k < ctx_.cfg.proxy_features.size(); ++k)
        p(Eigen::Index(r), Eigen::Index(k)) = values.at(ctx_.cfg.proxy_features[k]);
    }
    return predictors::hstack(x, p);
  }

  void report_predictions(const std::vector<predictors::Predictor>& models, const std::vector<std::string>& names,
                          const std::vector<Genome>& genomes) const {
    if (!ctx_.on_predict || genomes.empty()) return;
    const Eigen::MatrixXd x = features(genomes);
    std::vector<Eigen::VectorXd> pred;
    for (const auto& m : models) pred.push_back(m.predict(x));
    for (size_t r = 0; r < genomes.size(); ++r) {
      MetricValues values;
      for (size_t k = 0; k < names.size(); ++k) values[names[k]] = pred[k](Eigen::Index(r));
      ctx_.on_predict(genomes[r], values);
    }
  }

  std::vector<predictors::Predictor> fit_predictors(int iteration, const History& h) const {
    std::vector<Genome> genomes;
    for (const auto& ind : h.validated) genomes.push_back(ind.genome);
    const Eigen::MatrixXd x = features(genomes);
    predictors::FitOptions opts;
    opts.folds = ctx_.cfg.folds;
    opts.seed = core::derive_seed(ctx_.cfg.seed, "search/cv", uint64_t(iteration));
    std::vector<predictors::Predictor> models;
    for (const auto& name : predicted_metrics()) {
      const auto start = std::chrono::steady_clock::now();
      Eigen::VectorXd y(Eigen::Index(h.size()));
      for (size_t i = 0; i < h.size(); ++i) y(Eigen::Index(i)) = h.metrics[i].at(name);
      models.push_back(predictors::Predictor::fit(x, y, predictors::parse_method(ctx_.cfg.predictor), opts));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (ctx_.on_fit) ctx_.on_fit({iteration, name, models.back().report(), s});
    }
    return models;
  }

  // Objective and constraint metrics that need a predictor.
  std::vector<std::string> predicted_metrics() const {
    std::vector<std::string> out;
    for (const auto& name : ctx_.goals.metric_names())
      if (!exact_ || std::find(exact_names_.begin(), exact_names_.end(), name) == exact_names_.end())
        out.push_back(name);
    return out;
  }

  TacticContext ctx_;
  predictors::OneHotEncoder encoder_;
  std::vector<std::string> exact_names_;
  bool exact_ = false;
};

}  // namespace

std::unique_ptr<Tactic> make_tactic(const TacticContext& ctx) {
  const auto& t = ctx.cfg.tactic;
  if (t == "random") return std::make_unique<RandomTactic>(ctx);
  if (t == "ga") return std::make_unique<EvolutionTactic>(ctx, Survival::kGa);
  if (t == "nsga2") return std::make_unique<EvolutionTactic>(ctx, Survival::kNsga2);
  if (t == "linas") return std::make_unique<LinasTactic>(ctx);
  QNAS_THROW("search.tactic '", t, "'; expected random, ga, nsga2 or linas");
}

}  // namespace qnas::search
