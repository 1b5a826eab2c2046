#pragma once
// The search loop and its files. Each iteration: the tactic proposes a batch
// (saved in state.json before anything is measured), every candidate is
// validated and appended to evaluations.csv as soon as it is measured, then
// hypervolume.csv gains a row, pareto.csv and baselines.csv (every uniform
// baseline of the initial population against all rows) are rewritten and
// state.json moves to the next iteration (atomically). LINAS also logs each
// refit (predictors.csv) and what it predicted for each candidate it
// proposed, by row id once validated (predictions.csv).
//
// Resume: the history is re-read from evaluations.csv, the pending batch
// from state.json; candidates of that batch already in the CSV are skipped.
// Tactics derive their state from the history and seeded per-iteration
// streams, so a killed and resumed run validates exactly the candidates an
// uninterrupted run would, as long as the metrics themselves are
// deterministic (top1, sizes, MACs). Measured latency differs from run to
// run, so with a latency objective the later proposals may differ.

#include <functional>
#include <string>
#include <vector>

#include "search/baselines.hpp"
#include "search/objectives.hpp"
#include "search/results.hpp"
#include "search/space.hpp"
#include "search/tactics.hpp"
#include "src/core/config.hpp"

namespace qnas::search {

/// Measures one candidate.
using Validate = std::function<MetricValues(const supernet::SubnetSpec&)>;
/// Measures a batch of candidates (e.g. on the workers of a task queue) and
/// calls `measured(i, metrics, seconds)` for each, in order of i.
using Measured = std::function<void(size_t, MetricValues, double)>;
using ValidateBatch = std::function<void(const std::vector<supernet::SubnetSpec>&, const Measured&)>;

struct SearchOptions {
  core::SearchConfig cfg;
  std::string out_dir;
  bool resume = false;
  std::string fingerprint;  // of the resolved config but output.dir: resume refuses another
  std::string legacy_fingerprint;  // also accepted on resume (state.json files of older versions)
  ProxyFn proxies;          // for search.proxy_features
  SeedFn seeds;             // for search.seed_from_sensitivity
};

struct SearchResult {
  std::vector<Row> rows;
  std::vector<int> front;       // row indices, non-dominated and feasible
  Point reference;              // in the objectives' own units
  double hypervolume = 0;
  std::vector<BaselineComparison> baselines;  // the uniform baselines against all rows
  // In this process (not resumed rows): the candidates' own times (summed
  // over workers), the wall time spent waiting for batches, the whole run.
  double eval_s = 0, validate_s = 0, wall_s = 0;
};

SearchResult run_search(const Space& space, const SearchOptions& opts, const Validate& validate);
SearchResult run_search(const Space& space, const SearchOptions& opts, const ValidateBatch& validate);

/// Reference point (objectives' units) from rows: the worst value of each
/// objective plus 10% of its range (1% of |worst| when the range is 0).
Point default_reference(const Goals& goals, const std::vector<MetricValues>& rows);

/// Hypervolume (in minimisation form) of the feasible rows against a
/// reference in the objectives' units.
double rows_hypervolume(const Goals& goals, const std::vector<MetricValues>& rows, const Point& reference);

/// Indices of the feasible non-dominated rows.
std::vector<int> rows_front(const Goals& goals, const std::vector<MetricValues>& rows);

/// baselines.csv: id, baseline, the objectives, on_front, dominated_by,
/// no_loss_rows, then per minimised objective its ratio and the row reaching it.
std::string baselines_csv(const Goals& goals, const std::vector<Row>& rows,
                          const std::vector<BaselineComparison>& baselines);

}  // namespace qnas::search
