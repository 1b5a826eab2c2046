#include "search/runner.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <unordered_map>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "src/core/progress.hpp"
#include "search/state.hpp"

namespace qnas::search {

// --- Hypervolume and fronts over rows -----------------------------------------------

Point default_reference(const Goals& goals, const std::vector<MetricValues>& rows) {
  QNAS_CHECK(!rows.empty(), "reference point: no rows to derive it from");
  std::vector<Point> points;
  for (const auto& m : rows) points.push_back(goals.to_min(m));
  Point ref = reference_beyond(points);
  for (size_t k = 0; k < ref.size(); ++k) ref[k] = goals.from_min(k, ref[k]);
  return ref;
}

namespace {

Point min_form(const Goals& goals, const Point& own_units) {
  Point p;
  for (size_t k = 0; k < own_units.size(); ++k) p.push_back(goals.from_min(k, own_units[k]));  // negation is its own inverse
  return p;
}

struct Feasible {
  std::vector<Point> points;
  std::vector<int> index;
};

Feasible feasible_points(const Goals& goals, const std::vector<MetricValues>& rows) {
  Feasible f;
  for (size_t i = 0; i < rows.size(); ++i)
    if (goals.violation(rows[i]) <= 0) f.points.push_back(goals.to_min(rows[i])), f.index.push_back(int(i));
  return f;
}

}  // namespace

double rows_hypervolume(const Goals& goals, const std::vector<MetricValues>& rows, const Point& reference) {
  return hypervolume(feasible_points(goals, rows).points, min_form(goals, reference));
}

std::vector<int> rows_front(const Goals& goals, const std::vector<MetricValues>& rows) {
  const auto f = feasible_points(goals, rows);
  std::vector<int> out;
  for (int k : pareto_indices(f.points)) out.push_back(f.index[size_t(k)]);
  std::sort(out.begin(), out.end());
  return out;
}

std::string baselines_csv(const Goals& goals, const std::vector<Row>& rows,
                          const std::vector<BaselineComparison>& baselines) {
  std::vector<std::string> head = {"id", "baseline"};
  for (const auto& o : goals.objectives) head.push_back(o.name);
  for (const char* c : {"on_front", "dominated_by", "no_loss_rows"}) head.push_back(c);
  for (const auto& o : goals.objectives)
    if (!o.maximize) head.push_back(o.name + "_ratio"), head.push_back(o.name + "_ratio_id");
  std::string out = core::csv_line(head);
  for (const auto& b : baselines) {
    const auto& row = rows[size_t(b.row)];
    std::vector<std::string> cells = {std::to_string(row.id), b.label};
    for (const auto& o : goals.objectives) cells.push_back(core::shortest(row.metrics.at(o.name)));
    cells.push_back(b.on_front ? "1" : "0");
    cells.push_back(std::to_string(b.dominated_by));
    cells.push_back(std::to_string(b.no_loss_rows));
    for (size_t k = 0; k < b.ratios.size(); ++k) {
      cells.push_back(core::fixed(b.ratios[k], 4));
      cells.push_back(b.ratio_rows[k] >= 0 ? std::to_string(rows[size_t(b.ratio_rows[k])].id) : "");
    }
    out += core::csv_line(cells);
  }
  return out;
}

// --- The run -------------------------------------------------------------------------

namespace {

struct Paths {
  std::string evaluations, pareto, baselines, hypervolume, state, predictors, predictions;
  explicit Paths(const std::string& dir)
      : evaluations(dir + "/evaluations.csv"),
        pareto(dir + "/pareto.csv"),
        baselines(dir + "/baselines.csv"),
        hypervolume(dir + "/hypervolume.csv"),
        state(dir + "/state.json"),
        predictors(dir + "/predictors.csv"),
        predictions(dir + "/predictions.csv") {}
};

std::vector<std::string> hypervolume_header(const Goals& goals) {
  std::vector<std::string> h = {"iteration", "evaluations", "hypervolume", "front_size", "baselines",
                                "baselines_dominated", "baselines_hypervolume", "propose_s", "eval_s", "wall_s"};
  for (const auto& o : goals.objectives) h.push_back("ref_" + o.name);
  return h;
}

const std::vector<std::string> kPredictorHeader = {"iteration", "metric", "model", "param", "rows",
                                                   "folds",     "cv_mape", "kendall_tau", "fit_s"};

// LINAS's prediction of each validated candidate, by row id (long form).
const std::vector<std::string> kPredictionHeader = {"id", "iteration", "metric", "predicted"};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

class Runner {
 public:
  Runner(const Space& space, const SearchOptions& opts, const ValidateBatch& validate)
      : space_(space), opts_(opts), validate_(validate), goals_(Goals::from_config(opts.cfg)), paths_(opts.out_dir) {}

  SearchResult run() {
    const auto start = std::chrono::steady_clock::now();
    open();
    TacticContext ctx{space_,        goals_,       opts_.cfg, [this](const PredictorFit& f) { log_fit(f); },
                      opts_.proxies, opts_.seeds,
                      [this](const Genome& g, const MetricValues& m) { predicted_[genome_key(g)] = m; }};
    tactic_ = make_tactic(ctx);
    core::Progress progress("search", opts_.cfg.evaluations, "cand");
    const size_t resumed_rows = history_.size();
    const size_t budget = size_t(opts_.cfg.evaluations);
    while (history_.size() < budget) {
      const auto iter_start = std::chrono::steady_clock::now();
      double propose_s = 0;
      if (state_.batch.empty()) {
        auto rng = core::Rng(core::derive_seed(opts_.cfg.seed, "search/propose", uint64_t(state_.iteration)));
        state_.batch = tactic_->propose(state_.iteration, history_, budget - history_.size(), rng);
        propose_s = seconds_since(iter_start);
        if (state_.batch.empty()) {
          std::fprintf(stderr, "search: the tactic proposed nothing new at iteration %d (space exhausted?)\n",
                       state_.iteration);
          break;
        }
        save_state();
      }
      std::vector<Genome> todo;
      for (const auto& g : state_.batch)
        if (!history_.keys.count(genome_key(g))) todo.push_back(g);  // else validated before a kill
      std::vector<supernet::SubnetSpec> specs;
      for (const auto& g : todo) specs.push_back(space_.decode(g));
      double eval_s = 0;
      const auto validate_start = std::chrono::steady_clock::now();
      validate_(specs, [&](size_t i, MetricValues metrics, double seconds) {
        add_row(todo[i], specs[i], std::move(metrics), seconds);
        eval_s += seconds;
        progress.update(int64_t(history_.size()), int64_t(history_.size() - resumed_rows), detail());
      });
      validate_s_ += seconds_since(validate_start);
      finish_iteration(propose_s, eval_s, seconds_since(iter_start));
    }
    progress.finish(detail());
    SearchResult r;
    r.rows = rows_;
    r.front = rows_front(goals_, history_.metrics);
    r.reference = state_.reference.value_or(Point{});
    r.hypervolume = hypervolume_;
    r.baselines = baselines();
    // This process's share: rows read back by --resume were timed by another.
    for (size_t i = resumed_rows; i < rows_.size(); ++i) r.eval_s += rows_[i].eval_s;
    r.validate_s = validate_s_;
    r.wall_s = seconds_since(start);
    return r;
  }

 private:
  void open() {
    const bool exists = core::file_exists(paths_.evaluations) || core::file_exists(paths_.state);
    if (!opts_.resume) {
      QNAS_CHECK(!exists, "search: ", opts_.out_dir, " already holds a search (evaluations.csv / state.json); rerun "
                 "with --resume to continue it, or pick another output.dir");
      state_.fingerprint = opts_.fingerprint;
      save_state();
    } else {
      QNAS_CHECK(core::file_exists(paths_.state), "search --resume: no ", paths_.state, "; expected a started search");
      state_ = load_state(paths_.state);
      for (const auto& g : state_.batch) {
        try {
          space_.decode(g);
        } catch (const Error& e) {
          QNAS_THROW(paths_.state, ": batch: ", e.what());
        }
      }
      if (!opts_.legacy_fingerprint.empty() && state_.fingerprint == opts_.legacy_fingerprint)
        state_.fingerprint = opts_.fingerprint;
      QNAS_CHECK(state_.fingerprint == opts_.fingerprint, "search --resume: ", paths_.state,
                 " was written under another configuration; resume with the same config file and --set flags");
      load_history();
      // Log rows of the iteration in progress are written again: its
      // hypervolume row always, its predictor fits unless the proposal was saved.
      const int it = state_.iteration;
      const int refit_from = state_.batch.empty() ? it : it + 1;
      keep_log_rows_before(paths_.hypervolume, it);
      keep_log_rows_before(paths_.predictors, refit_from);
      // Predictions of rows the kill cut off go with them.
      if (core::file_exists(paths_.predictions))
        filter_csv(paths_.predictions, [&](const std::vector<std::string>& r) { return first_cell_integer(r, paths_.predictions) < int(rows_.size()); });
    }
    evaluations_ = std::make_unique<core::CsvAppender>(paths_.evaluations, evaluation_header());
    hv_log_ = std::make_unique<core::CsvAppender>(paths_.hypervolume, hypervolume_header(goals_));
    if (opts_.cfg.tactic == "linas") {
      fit_log_ = std::make_unique<core::CsvAppender>(paths_.predictors, kPredictorHeader);
      prediction_log_ = std::make_unique<core::CsvAppender>(paths_.predictions, kPredictionHeader);
    }
  }

  // Keeps the rows of a per-iteration log (iteration in column 0) below `iteration`.
  static void keep_log_rows_before(const std::string& path, int iteration) {
    if (!core::file_exists(path)) return;
    filter_csv(path, [&](const std::vector<std::string>& r) { return first_cell_integer(r, path) < iteration; });
  }

  void load_history() {
    if (!core::file_exists(paths_.evaluations)) return;
    bool incomplete = false;
    const auto table = read_csv(paths_.evaluations, &incomplete);
    if (incomplete) {
      // A row cut by the kill: drop it (it is validated again).
      filter_csv(paths_.evaluations, [](const std::vector<std::string>&) { return true; });
    }
    for (auto& row : read_rows(table)) {
      add_to_history(row_genome(space_, row, paths_.evaluations), row);
    }
    if (!history_.metrics.empty() && state_.reference)
      hypervolume_ = rows_hypervolume(goals_, history_.metrics, *state_.reference);
  }

  void add_to_history(const Genome& g, Row row) {
    history_.add({g, goals_.to_min(row.metrics), goals_.violation(row.metrics)}, row.iteration, row.metrics);
    rows_.push_back(std::move(row));
  }

  void add_row(const Genome& g, const supernet::SubnetSpec& spec, MetricValues metrics, double seconds) {
    Row row;
    row.metrics = std::move(metrics);
    row.eval_s = seconds;
    row.id = int(rows_.size());
    row.iteration = state_.iteration;
    row.tactic = opts_.cfg.tactic;
    row.spec_json = supernet::to_json(spec).dump();
    evaluations_->append(row_fields(row));
    log_prediction(g, row);
    add_to_history(g, std::move(row));
  }

  void finish_iteration(double propose_s, double eval_s, double wall_s) {
    if (!state_.reference) {
      state_.reference = opts_.cfg.reference_point.empty() ? default_reference(goals_, history_.metrics)
                                                           : Point(opts_.cfg.reference_point);
    }
    hypervolume_ = rows_hypervolume(goals_, history_.metrics, *state_.reference);
    const auto front = rows_front(goals_, history_.metrics);
    const auto base = baselines();
    std::vector<MetricValues> base_metrics;
    int dominated = 0;
    for (const auto& b : base) base_metrics.push_back(history_.metrics[size_t(b.row)]), dominated += b.dominated_by > 0;
    const double base_hv = base.empty() ? 0 : rows_hypervolume(goals_, base_metrics, *state_.reference);
    std::vector<std::string> hv = {std::to_string(state_.iteration), std::to_string(history_.size()),
                                   core::shortest(hypervolume_), std::to_string(front.size()),
                                   std::to_string(base.size()), std::to_string(dominated), core::shortest(base_hv),
                                   core::fixed(propose_s, 3), core::fixed(eval_s, 3), core::fixed(wall_s, 3)};
    for (double r : *state_.reference) hv.push_back(core::shortest(r));
    hv_log_->append(hv);
    std::string pareto = core::csv_line(evaluation_header());
    for (int i : front) pareto += core::csv_line(row_fields(rows_[size_t(i)]));
    core::write_file_atomic(paths_.pareto, pareto);
    if (!base.empty()) core::write_file_atomic(paths_.baselines, baselines_csv(goals_, rows_, base));
    ++state_.iteration;
    state_.batch.clear();
    save_state();
  }

  std::vector<BaselineComparison> baselines() const {
    std::vector<Genome> genomes;
    for (const auto& ind : history_.validated) genomes.push_back(ind.genome);
    return compare_baselines(space_, goals_, genomes, history_.iteration, history_.metrics);
  }

  void save_state() {
    const auto pop = tactic_ ? tactic_->population(state_.iteration, history_) : std::vector<int>{};
    core::write_file_atomic(paths_.state, state_json(state_, opts_.cfg.tactic, history_.size(), pop).dump(1) + "\n");
  }

  void log_prediction(const Genome& g, const Row& row) {
    const auto p = predicted_.find(genome_key(g));
    if (!prediction_log_ || p == predicted_.end()) return;
    for (const auto& [metric, value] : p->second)
      prediction_log_->append({std::to_string(row.id), std::to_string(row.iteration), metric, core::shortest(value)});
  }

  void log_fit(const PredictorFit& f) {
    fit_log_->append({std::to_string(f.iteration), f.metric, f.report.model, core::shortest(f.report.param),
                      std::to_string(f.report.rows), std::to_string(f.report.folds), core::fixed(f.report.mape, 3),
                      core::fixed(f.report.tau, 3), core::fixed(f.fit_s, 3)});
    std::fprintf(stderr, "search: iteration %d predictor %-12s %s (%s) on %d rows: CV MAPE %.2f%%, Kendall tau %.3f\n",
                 f.iteration, f.metric.c_str(), f.report.model.c_str(), core::shortest(f.report.param).c_str(),
                 f.report.rows, f.report.mape, f.report.tau);
  }

  std::string detail() const {
    char buf[96];
    std::snprintf(buf, sizeof buf, "iteration %d, hypervolume %.6g,", state_.iteration, hypervolume_);
    return buf;
  }

  const Space& space_;
  const SearchOptions& opts_;
  const ValidateBatch& validate_;
  Goals goals_;
  Paths paths_;
  SearchState state_;
  History history_;
  std::vector<Row> rows_;
  double hypervolume_ = 0, validate_s_ = 0;
  std::unique_ptr<Tactic> tactic_;
  std::unique_ptr<core::CsvAppender> evaluations_, hv_log_, fit_log_, prediction_log_;
  std::unordered_map<std::string, MetricValues> predicted_;  // by genome key, from the last proposal
};

}  // namespace

SearchResult run_search(const Space& space, const SearchOptions& opts, const ValidateBatch& validate) {
  return Runner(space, opts, validate).run();
}

SearchResult run_search(const Space& space, const SearchOptions& opts, const Validate& validate) {
  const ValidateBatch one_by_one = [&](const std::vector<supernet::SubnetSpec>& specs, const Measured& measured) {
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      auto metrics = validate(specs[i]);
      measured(i, std::move(metrics), seconds_since(start));
    }
  };
  return Runner(space, opts, one_by_one).run();
}

}  // namespace qnas::search
