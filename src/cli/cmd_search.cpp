// qnas search / pareto / predict.
#include <cstdio>
#include <sstream>

#include "predictors/predictor.hpp"
#include "search/runner.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/subnet_args.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/progress.hpp"
#include "src/core/rng.hpp"
#include "src/core/task_queue.hpp"
#include "src/core/table.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/latency_model.hpp"
#include "src/eval/queue.hpp"
#include "src/eval/sensitivity.hpp"
#include "src/eval/session.hpp"
#include "src/report/report.hpp"
#include "supernet/checkpoint.hpp"

namespace qnas::cli {

namespace {

// Metrics only the latency harness produces.
bool needs_latency(const search::Goals& goals) {
  for (const auto& name : goals.metric_names())
    if (name.rfind("latency", 0) == 0 || name == "throughput_img_s" || name == "peak_rss_bytes") return true;
  return false;
}

// Opens the session (rank 0 writes its resolved config), training the
// supernet first when its checkpoint is missing (one process only).
eval::Session open_trained(const core::Config& config) {
  const std::string ckpt = supernet::checkpoint_path(config.output.dir);
  const bool trained = core::file_exists(ckpt);
  QNAS_CHECK(trained || config.search.train_if_missing, "search: no supernet checkpoint at ", ckpt,
             "; expected `qnas train CONFIG` first, or search.train_if_missing: true");
  // Several processes: rank 0 coordinates, the others validate candidates.
  auto session = eval::open_session(config, trained ? ckpt : "", /*queue=*/true);  // bad data fails before anything is written
  QNAS_CHECK(trained || session.world->size() == 1, "search: no supernet checkpoint at ", ckpt, "; a search of ",
             session.world->describe(), " validates on a trained supernet: run `qnas train CONFIG` first (it "
             "runs data parallel under the same launcher)");
  if (!session.world->coordinator()) return session;
  core::ensure_dir(config.output.dir);
  core::write_resolved_config(session.config, config.output.dir);
  core::write_class_names(session.data.class_names, config.output.dir);
  if (trained) return session;
  std::fprintf(stderr, "search: no checkpoint at %s; training the supernet first (search.train_if_missing)\n",
               ckpt.c_str());
  eval::train_supernet(session, /*resume=*/false);
  return session;
}

std::string fmt_metric(const std::string& name, double v) {
  if (name == "top1") return core::fixed(v, 2);
  if (name.rfind("latency", 0) == 0) return core::fixed(v, 3);
  return core::fixed(v, 0);
}

void print_front(const search::Space& space, const search::Goals& goals, const search::SearchResult& r,
                 const std::string& format) {
  std::vector<std::string> head = {"id", "iteration"};
  for (const auto& o : goals.objectives) head.push_back(o.name);
  head.push_back("weight_bits");
  core::Table t(head);
  for (int i : r.front) {
    const auto& row = r.rows[size_t(i)];
    std::vector<std::string> cells = {std::to_string(row.id), std::to_string(row.iteration)};
    for (const auto& o : goals.objectives) cells.push_back(fmt_metric(o.name, row.metrics.at(o.name)));
    cells.push_back(space.weight_bits_summary(search::row_genome(space, row, "search result")));
    t.add(cells);
  }
  std::printf("%s", t.render(format).c_str());
}

// Each uniform baseline of the initial population beside the front: where it
// stands, and the best ratio a row reaches at no loss in the maximised objectives.
void print_baselines(const search::Goals& goals, const search::SearchResult& r, const std::string& format) {
  if (r.baselines.empty()) return;
  std::vector<std::string> head = {"baseline", "id"};
  for (const auto& o : goals.objectives) head.push_back(o.name);
  head.push_back("front");
  head.push_back("dominated_by");
  for (const auto& name : r.baselines.front().ratio_names) head.push_back(name + "_ratio"), head.push_back("by_id");
  core::Table t(head);
  for (const auto& b : r.baselines) {
    const auto& row = r.rows[size_t(b.row)];
    std::vector<std::string> cells = {b.label, std::to_string(row.id)};
    for (const auto& o : goals.objectives) cells.push_back(fmt_metric(o.name, row.metrics.at(o.name)));
    cells.push_back(b.on_front ? "yes" : "no");
    cells.push_back(std::to_string(b.dominated_by));
    for (size_t k = 0; k < b.ratios.size(); ++k) {
      cells.push_back(core::fixed(b.ratios[k], 2) + "x");
      cells.push_back(b.ratio_rows[k] >= 0 ? std::to_string(r.rows[size_t(b.ratio_rows[k])].id) : "");
    }
    t.add(cells);
  }
  if (format == "text")
    std::printf("\nbaselines (uniform policies; ratio: baseline / the best row with no loss in the maximised "
                "objectives)\n");
  std::printf("%s", t.render(format).c_str());
}

std::vector<double> parse_numbers(const std::string& text, const std::string& what) {
  std::vector<double> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    QNAS_CHECK(!item.empty() && *end == '\0', what, " '", text, "': '", item, "' is not a number");
    out.push_back(v);
  }
  return out;
}

struct SearchArgs {
  ConfigArgs config;
  bool resume = false, no_report = false;
  std::string format = "text";
};

bool uses_sensitivity(const core::SearchConfig& s) {
  return s.seed_from_sensitivity > 0 ||
         std::find(s.proxy_features.begin(), s.proxy_features.end(), "sensitivity") != s.proxy_features.end();
}

// The largest subnet's sensitivity at every searched weight bit-width below
// 32, weights only: one pass per bit-width over the calibration images.
search::SensitivityPrior measure_prior(const eval::Evaluator& evaluator, const search::Space& space,
                                       const core::QuantConfig& quant) {
  std::vector<int> bits;
  for (int b : quant.weight_bits)
    if (b < 32) bits.push_back(b);
  if (bits.empty()) return {};
  const auto largest = supernet::largest_spec(space.desc(), {});
  return search::prior_of(eval::measure_sensitivity(evaluator, largest, bits, 32));
}

// The latency model (src/eval/latency_model.hpp) when the search uses its
// estimate: as a LINAS feature, an objective or a constraint. Measured once
// per host into latency_table.json beside the checkpoint.
bool latency_model_wanted(const core::Config& config, const search::Goals& goals) {
  const auto& features = config.search.proxy_features;
  auto names = goals.metric_names();
  names.insert(names.end(), features.begin(), features.end());
  return std::find(names.begin(), names.end(), "latency_est_ms") != names.end();
}

std::shared_ptr<const eval::LatencyModel> latency_model_for(const core::Config& config, const search::Goals& goals,
                                                            const eval::Evaluator& evaluator, const search::Space& space) {
  if (!latency_model_wanted(config, goals)) return nullptr;
  const auto path = eval::LatencyModel::path_in(config.output.dir);
  bool measured = false;
  auto model = std::make_shared<const eval::LatencyModel>(
      eval::LatencyModel::load_or_build(evaluator, space.desc(), path, &measured));
  std::fprintf(stderr, "latency model: %zu entries from %d probe subnets, %s %s\n", model->table().size(),
               model->probes(), measured ? "measured into" : "read from", path.c_str());
  return model;
}

// How well latency_est_ms ranks and matches the measured latency_ms.
void print_latency_model_agreement(const std::vector<search::Row>& rows) {
  const auto a = search::estimate_agreement(rows, "latency_est_ms", "latency_ms");
  if (a.rows < 2) return;
  std::printf("\nlatency model vs measured latency_ms over %d rows: median |error| %.1f%%, Kendall tau %.3f\n", a.rows,
              a.median_abs_pct_error, a.kendall_tau);
}

// latency_ms scales each candidate's ratio to the all-INT8 reference by the
// reference's own latency: rank 0 measures it (or reads the run's), the
// workers take its value, so every row is in the same units.
void share_latency_anchor(eval::Evaluator& evaluator, const search::Space& space, const std::string& dir,
                          const core::World& world) {
  if (evaluator.config().latency.reference == "none") return;
  if (world.coordinator()) use_run_latency_anchor(evaluator, space.desc(), dir, /*write=*/true);
  const std::string ms = world.broadcast_bytes("latency_anchor", core::shortest(evaluator.latency_anchor_ms()));
  if (!world.coordinator()) evaluator.set_latency_anchor_ms(std::stod(ms));
}

std::string dist_report_path(const std::string& dir) { return dir + "/dist.json"; }

void print_summary(const search::Goals& goals, const search::SearchResult& r, const std::string& dir,
                   const core::TaskQueue* queue, const std::string& report_path) {
  std::string ref;
  for (size_t k = 0; k < r.reference.size(); ++k)
    ref += (k ? ", " : "") + goals.objectives[k].name + " " + core::fixed(r.reference[k], 4);
  std::printf("\n%zu validated, %zu on the front; hypervolume %.6g (reference %s); search overhead %.1f%% of %s\n",
              r.rows.size(), r.front.size(), r.hypervolume, ref.c_str(),
              r.wall_s > 0 ? 100.0 * (r.wall_s - r.validate_s) / r.wall_s : 0.0, core::format_duration(r.wall_s).c_str());
  if (queue) {
    const auto& st = queue->stats();
    std::printf("%d workers validated %d candidates (%d posted again); workers busy %.1f%% of the validation time\n",
                queue->workers(), st.tasks, st.reposted,
                r.validate_s > 0 ? 100.0 * r.eval_s / (queue->workers() * r.validate_s) : 0.0);
  }
  std::printf("files: %s/{evaluations,pareto,baselines,hypervolume}.csv, state.json%s\n", dir.c_str(),
              queue ? ", dist.json" : "");
  if (!report_path.empty()) std::printf("report: %s\n", report_path.c_str());
}

void run_search_command(const SearchArgs& a) {
  const auto config = core::load_config(a.config.path, a.config.sets);
  auto session = open_trained(config);
  const auto& world = *session.world;
  const search::Space space(session.net->space());
  const auto goals = search::Goals::from_config(config.search);
  // Throughput is timed only when an objective asks for it (it doubles the latency phase).
  auto eval_config = config;
  const auto names = goals.metric_names();
  if (std::find(names.begin(), names.end(), "throughput_img_s") == names.end()) eval_config.latency.throughput_batch = 0;
  eval::Evaluator evaluator(eval_config, session.net, session.data);
  eval::EvalOptions eo;
  eo.max_images = config.search.val_images;
  eo.latency = needs_latency(goals);
  std::unique_ptr<core::TaskQueue> queue;  // several processes: rank 0 proposes, the others validate
  if (world.size() > 1) queue = std::make_unique<core::TaskQueue>(session.world, config.dist, "search");
  if (eo.latency || latency_model_wanted(config, goals))
    share_latency_anchor(evaluator, space, config.output.dir, world);
  if (queue && !world.coordinator()) {
    eval::serve_measurements(*queue, world, config.dist, std::max(session.threads, config.latency.threads),
                             [&](const supernet::SubnetSpec& spec) { return evaluator.evaluate(spec, "val", eo).metrics; });
    return;
  }
  const auto latency_model = latency_model_for(config, goals, evaluator, space);
  const search::Validate validate = [&](const supernet::SubnetSpec& spec) {
    const auto r = evaluator.evaluate(spec, "val", eo);
    search::MetricValues m(r.metrics);
    if (latency_model) m["latency_est_ms"] = latency_model->estimate(r.layers).ms;
    return m;
  };
  const search::ValidateBatch on_workers = [&](const std::vector<supernet::SubnetSpec>& specs,
                                               const search::Measured& measured) {
    eval::measure_on_queue(*queue, specs, [&](size_t i, eval::Metrics m, const core::TaskResult& r) {
      if (latency_model) m["latency_est_ms"] = latency_model->estimate(session.net->layer_infos(specs[i])).ms;
      measured(i, std::move(m), r.seconds);
    });
  };
  search::SearchOptions opts;
  opts.cfg = config.search;
  opts.out_dir = config.output.dir;
  opts.resume = a.resume;
  // Of everything but where the run lives: a run folder moved elsewhere (a
  // full disk) resumes. Folders started before this rule carry the hash of
  // the whole config, accepted too.
  auto without_dir = config;
  without_dir.output.dir.clear();
  opts.fingerprint = std::to_string(core::fnv1a64(core::to_yaml(without_dir)));
  opts.legacy_fingerprint = std::to_string(core::fnv1a64(core::to_yaml(config)));
  search::SensitivityPrior prior;
  if (uses_sensitivity(config.search)) prior = measure_prior(evaluator, space, config.quant);
  opts.proxies = search::shape_proxies(space, *session.net, prior, latency_model);
  if (config.search.seed_from_sensitivity > 0) opts.seeds = search::sensitivity_seeds(space, *session.net, prior);
  std::fprintf(stderr, "search: %s, %d evaluations (population %d) on %lld validation images; space 10^%.1f; %s%s\n",
               config.search.tactic.c_str(), config.search.evaluations, config.search.population,
               (long long)(eo.max_images > 0 ? std::min<int64_t>(eo.max_images, session.data.val.size())
                                             : session.data.val.size()),
               space.desc().log10_size(), eo.latency ? "latency measured on int8 kernels" : "latency not measured",
               queue ? ("; validated by " + std::to_string(queue->workers()) + " workers").c_str() : "");
  // A search the runner will refuse (a folder holding one, without --resume) leaves no record.
  if (a.resume || !(core::file_exists(config.output.dir + "/state.json") ||
                    core::file_exists(config.output.dir + "/evaluations.csv")))
    eval::record_run_session(session, config.output.dir, a.resume ? "search --resume" : "search");
  // The searched space (layers in network order, policy choices) beside the
  // rows, so the folder describes itself whatever checkpoint it shares.
  core::write_file_atomic(config.output.dir + "/space.json", supernet::to_json(space.desc()).dump(2) + "\n");
  std::vector<std::string> pinning;
  if (queue) {
    pinning = eval::worker_pinning(world, queue->name());
    for (const auto& p : pinning) std::fprintf(stderr, "search: worker %s\n", p.c_str());
    core::write_file_atomic(dist_report_path(config.output.dir), eval::queue_report_json(world, session.threads, pinning));
  }
  const auto r = queue ? search::run_search(space, opts, on_workers) : search::run_search(space, opts, validate);
  if (queue) {
    queue->close();
    core::write_file_atomic(dist_report_path(config.output.dir),
                            eval::queue_report_json(world, session.threads, pinning, &queue->stats()));
  }
  print_front(space, goals, r, a.format);
  if (a.format == "text" || a.format == "md") print_baselines(goals, r, a.format);
  if (latency_model && a.format == "text") print_latency_model_agreement(r.rows);
  // The search's files are complete and kept whatever happens to the report.
  std::string report_path;
  if (!a.no_report) {
    try {
      report_path = config.output.dir + "/report.html";
      report::write_report({config.output.dir}, report_path);
    } catch (const Error& e) {
      std::fprintf(stderr, "search: report.html not written: %s\n", e.what());
      report_path.clear();
    }
  }
  if (a.format == "text") print_summary(goals, r, config.output.dir, queue.get(), report_path);
}

struct ParetoArgs {
  std::string csv, objectives, ref, format = "text";
};

void run_pareto_command(const ParetoArgs& a) {
  const auto goals = search::Goals::parse_objectives(a.objectives);
  const auto table = search::read_csv(a.csv);
  std::vector<search::MetricValues> rows;
  for (size_t i = 0; i < table.rows.size(); ++i) {
    search::MetricValues m;
    for (const auto& o : goals.objectives) m[o.name] = table.number(i, o.name);
    rows.push_back(m);
  }
  QNAS_CHECK(!rows.empty(), a.csv, ": no rows");
  const auto ref = a.ref.empty() ? search::default_reference(goals, rows) : parse_numbers(a.ref, "--ref");
  QNAS_CHECK(ref.size() == goals.objectives.size(), "--ref '", a.ref, "': ", ref.size(), " values for ",
             goals.objectives.size(), " objectives");
  std::vector<std::string> head;
  const bool has_id = std::find(table.header.begin(), table.header.end(), "id") != table.header.end();
  head.push_back(has_id ? "id" : "row");
  for (const auto& o : goals.objectives) head.push_back(o.name);
  core::Table t(head);
  for (int i : search::rows_front(goals, rows)) {
    std::vector<std::string> cells = {has_id ? table.rows[size_t(i)][table.column("id")] : std::to_string(i + 1)};
    for (const auto& o : goals.objectives) cells.push_back(fmt_metric(o.name, rows[size_t(i)].at(o.name)));
    t.add(cells);
  }
  std::printf("%s", t.render(a.format).c_str());
  std::string ref_text;
  for (double r : ref) ref_text += (ref_text.empty() ? "" : ",") + core::shortest(r);
  std::fprintf(a.format == "text" ? stdout : stderr, "%shypervolume %.10g (reference %s) over %zu rows\n",
               a.format == "text" ? "\n" : "", search::rows_hypervolume(goals, rows, ref), ref_text.c_str(),
               rows.size());
}

struct PredictArgs {
  std::string csv, objective, predictor = "auto", format = "text";
  std::vector<std::string> extra_columns;
  int folds = 5;
  uint64_t seed = 0;
};

void run_predict_command(const PredictArgs& a) {
  const auto table = search::read_csv(a.csv);
  QNAS_CHECK(!table.rows.empty(), a.csv, ": no rows");
  std::vector<std::string> specs;
  Eigen::VectorXd y(Eigen::Index(table.rows.size()));
  for (size_t i = 0; i < table.rows.size(); ++i) {
    specs.push_back(table.rows[i][table.column("spec_json")]);
    y(Eigen::Index(i)) = table.number(i, a.objective);
  }
  const auto f = search::spec_features(specs, a.csv);
  const auto width = Eigen::Index(f.columns.size() + a.extra_columns.size());
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(y.size(), width);
  for (size_t i = 0; i < f.active.size(); ++i) {
    for (int c : f.active[i]) x(Eigen::Index(i), c) = 1.0;
    for (size_t k = 0; k < a.extra_columns.size(); ++k)
      x(Eigen::Index(i), Eigen::Index(f.columns.size() + k)) = table.number(i, a.extra_columns[k]);
  }
  predictors::FitOptions opts;
  opts.folds = a.folds;
  opts.seed = a.seed;
  const auto method = predictors::parse_method(a.predictor);
  std::vector<predictors::Method> methods = {method};
  if (method == predictors::Method::kAuto) methods = {predictors::Method::kRidge, predictors::Method::kSvr};
  core::Table t({"objective", "rows", "features", "folds", "predictor", "param", "cv_mape", "kendall_tau"});
  std::string best;
  double best_mape = INFINITY;
  for (auto m : methods) {
    const auto rep = predictors::Predictor::fit(x, y, m, opts).report();
    t.add({a.objective, std::to_string(rep.rows), std::to_string(x.cols()), std::to_string(rep.folds), rep.model,
           core::shortest(rep.param), core::fixed(rep.mape, 3), core::fixed(rep.tau, 4)});
    if (rep.mape < best_mape) best_mape = rep.mape, best = rep.model;
  }
  std::printf("%s", t.render(a.format).c_str());
  if (method == predictors::Method::kAuto && a.format == "text") std::printf("\nauto keeps %s\n", best.c_str());
}

}  // namespace

void register_search(CLI::App& app) {
  auto* cmd = app.add_subcommand("search", "search architectures and per-layer policies (config section `search`)");
  auto a = std::make_shared<SearchArgs>();
  add_config_args(*cmd, a->config);
  cmd->add_flag("--resume", a->resume, "continue the search in output.dir from its state.json and evaluations.csv");
  cmd->add_flag("--no-report", a->no_report, "do not write report.html into output.dir at the end (see `qnas report`)");
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_search_command(*a); });
}

void register_pareto(CLI::App& app) {
  auto* cmd = app.add_subcommand("pareto", "print the non-dominated rows and the hypervolume of any results CSV");
  auto a = std::make_shared<ParetoArgs>();
  cmd->add_option("csv", a->csv, "CSV with one column per objective (e.g. evaluations.csv)")->required();
  cmd->add_option("--objectives", a->objectives, "NAME:max|min,... e.g. top1:max,latency_ms:min")->required();
  cmd->add_option("--ref", a->ref, "reference point a,b[,c] in the objectives' units (default: worst + 10% of range)");
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_pareto_command(*a); });
}

void register_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "fit a predictor on an evaluations.csv and report its k-fold CV MAPE and Kendall tau");
  auto a = std::make_shared<PredictArgs>();
  cmd->add_option("csv", a->csv, "evaluations.csv (columns spec_json and the objective)")->required();
  cmd->add_option("--objective", a->objective, "column to predict, e.g. top1")->required();
  cmd->add_option("--predictor", a->predictor, "ridge | svr | auto")
      ->check(CLI::IsMember({"ridge", "svr", "auto"}))->capture_default_str();
  cmd->add_option("--folds", a->folds, "cross-validation folds")->check(CLI::Range(2, 100))->capture_default_str();
  cmd->add_option("--seed", a->seed, "seed of the fold assignment")->capture_default_str();
  cmd->add_option("--with", a->extra_columns, "numeric columns appended to the one-hot features, e.g. params,macs "
                  "(what search.proxy_features does in LINAS)")->delimiter(',');
  add_table_format(*cmd, a->format);
  cmd->callback([a] { run_predict_command(*a); });
}

}  // namespace qnas::cli
