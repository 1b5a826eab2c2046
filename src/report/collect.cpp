// collect(): run folders -> the page's JSON. Each run is read whole first
// (RunFolder), then the parts that compare runs (reference point,
// hypervolume curves, tactic groups) are computed over all of them.

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "predictors/predictor.hpp"
#include "search/objectives.hpp"
#include "search/results.hpp"
#include "search/runner.hpp"
#include "src/core/config.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/version.hpp"
#include "src/report/report.hpp"

namespace qnas::report {

namespace {

using nlohmann::json;

struct RunFolder {
  std::string dir, name;
  core::Config config;
  std::string config_yaml;
  search::Goals goals;
  std::vector<std::string> layers, methods;
  std::vector<search::Row> rows;
  std::vector<search::MetricValues> metrics;  // of rows, same order
  std::vector<int> front;                     // row indices
  std::optional<search::Point> own_reference;
  json state, run_info, dist, latency_identity;  // null when absent
  std::optional<search::CsvTable> hypervolume_log, fits, predictions, train_log;
  std::vector<std::string> notes;
};

std::string path_in(const std::string& dir, const std::string& file) { return dir + "/" + file; }

json read_json_if_present(const std::string& path, std::vector<std::string>& notes) {
  if (!core::file_exists(path)) return nullptr;
  try {
    return json::parse(core::read_text_file(path, "run file"));
  } catch (const json::exception& e) {
    notes.push_back(path + " is not valid JSON (" + e.what() + "); left out");
    return nullptr;
  }
}

std::optional<search::CsvTable> read_csv_if_present(const std::string& path, std::vector<std::string>& notes) {
  if (!core::file_exists(path)) return std::nullopt;
  bool cut = false;
  auto t = search::read_csv(path, &cut);
  if (cut) notes.push_back(path + " ends in a cut line (a writer was killed mid-row); that line is left out");
  return t;
}

std::string folder_name(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const auto slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

void read_space(RunFolder& r) {
  const std::string path = path_in(r.dir, "space.json");
  const json space = read_json_if_present(path, r.notes);
  if (space.is_null()) {
    r.notes.push_back("no space.json: the policy heatmap shows only the layers the front members use");
    return;
  }
  try {
    r.layers = space.at("layers").get<std::vector<std::string>>();
    r.methods = space.at("methods").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    QNAS_THROW(path, ": expected the keys layers and methods (lists of names) of a qnas space.json (", e.what(), ")");
  }
}

void read_rows(RunFolder& r) {
  const auto table = read_csv_if_present(path_in(r.dir, "evaluations.csv"), r.notes);
  if (!table) {
    r.notes.push_back("no evaluations.csv: no candidate was validated yet");
    return;
  }
  r.rows = search::read_rows(*table);
  for (const auto& row : r.rows) {
    for (const auto& name : r.goals.metric_names())
      QNAS_CHECK(row.metrics.count(name), table->path, ": row id ", row.id, " has no ", name,
                 ", an objective or constraint of ", r.dir, "/config.resolved.yaml");
    r.metrics.push_back(row.metrics);
  }
  r.front = search::rows_front(r.goals, r.metrics);
}

void read_state(RunFolder& r) {
  r.state = read_json_if_present(path_in(r.dir, "state.json"), r.notes);
  if (r.state.is_object() && r.state.contains("reference_point") && r.state["reference_point"].is_array())
    r.own_reference = r.state["reference_point"].get<search::Point>();
  const int target = r.config.search.evaluations;
  if (r.state.is_null()) r.notes.push_back("no state.json: the search never saved its state");
  if (int(r.rows.size()) < target)
    r.notes.push_back("incomplete: " + std::to_string(r.rows.size()) + " of " + std::to_string(target) +
                      " candidates validated (killed, or still running); `qnas search CONFIG --resume` continues it");
}

RunFolder read_run(const std::string& dir) {
  RunFolder r;
  r.dir = dir;
  r.name = folder_name(dir);
  const std::string config_path = path_in(dir, "config.resolved.yaml");
  const bool has_config = core::file_exists(config_path), has_rows = core::file_exists(path_in(dir, "evaluations.csv"));
  QNAS_CHECK(has_config || has_rows, "report: ", dir, " is not a qnas search run: it holds neither "
             "config.resolved.yaml nor evaluations.csv (expected the output.dir of `qnas search`)");
  QNAS_CHECK(has_config, "report: ", dir, " has an evaluations.csv but no config.resolved.yaml; the report needs "
             "the run's objectives from it");
  r.config_yaml = core::read_text_file(config_path, "resolved config");
  r.config = core::parse_config(r.config_yaml, config_path);
  r.goals = search::Goals::from_config(r.config.search);
  read_space(r);
  read_rows(r);
  read_state(r);
  r.run_info = read_json_if_present(path_in(dir, "run.json"), r.notes);
  r.dist = read_json_if_present(path_in(dir, "dist.json"), r.notes);
  const json latency = read_json_if_present(path_in(dir, "latency_reference.json"), r.notes);
  if (latency.is_object() && latency.contains("identity")) r.latency_identity = latency["identity"];
  r.hypervolume_log = read_csv_if_present(path_in(dir, "hypervolume.csv"), r.notes);
  r.fits = read_csv_if_present(path_in(dir, "predictors.csv"), r.notes);
  r.predictions = read_csv_if_present(path_in(dir, "predictions.csv"), r.notes);
  r.train_log = read_csv_if_present(path_in(dir, "train_log.csv"), r.notes);
  return r;
}

// --- Summaries of a spec -------------------------------------------------------------

json parse_spec(const search::Row& row, const std::string& dir) {
  try {
    return json::parse(row.spec_json);
  } catch (const json::exception& e) {
    QNAS_THROW(dir, "/evaluations.csv: row id ", row.id, ": spec_json is not valid JSON (", e.what(), ")");
  }
}

// "depth 2 2 2 · expand 6 4 3": values grouped by the variable's last field,
// in the spec's (network) order; family-neutral.
std::string arch_summary(const json& arch) {
  std::vector<std::pair<std::string, std::string>> groups;
  for (const auto& [key, value] : arch.items()) {
    const std::string field = key.substr(key.rfind('.') + 1);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == field; });
    if (it == groups.end()) it = groups.insert(groups.end(), {field, field});
    it->second += " " + value.dump();
  }
  std::string out;
  for (const auto& g : groups) out += (out.empty() ? "" : " · ") + g.second;
  return out;
}

// "W4×10 W8×12 · A8×20 A32×2 · rtn×22"
std::string policy_summary(const json& policy) {
  std::map<int, int> w, a;
  std::map<std::string, int> m;
  for (const auto& [layer, p] : policy.items()) {
    ++w[p.value("weight_bits", 32)], ++a[p.value("act_bits", 32)];
    ++m[p.value("method", std::string("?"))];
  }
  std::string out;
  for (const auto& [bits, n] : w) out += (out.empty() ? "W" : " W") + std::to_string(bits) + "×" + std::to_string(n);
  out += " ·";
  for (const auto& [bits, n] : a) out += " A" + std::to_string(bits) + "×" + std::to_string(n);
  out += " ·";
  for (const auto& [name, n] : m) out += " " + name + "×" + std::to_string(n);
  return out;
}

// --- Per-run parts of the page ----------------------------------------------------------

json rows_json(const RunFolder& r, std::vector<json>& specs) {
  json out = json::array();
  std::set<int> front(r.front.begin(), r.front.end());
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    specs.push_back(parse_spec(row, r.dir));
    json j = {{"run", r.name}, {"id", row.id}, {"iteration", row.iteration}, {"front", front.count(int(i)) > 0}};
    for (const auto& [k, v] : row.metrics) j[k] = v;
    j["arch"] = arch_summary(specs.back().value("arch", json::object()));
    j["policy"] = policy_summary(specs.back().value("policy", json::object()));
    out.push_back(std::move(j));
  }
  return out;
}

// Front members best-first by the first objective, one cell per layer.
json heatmap_json(const RunFolder& r, const std::vector<json>& specs) {
  std::vector<int> members = r.front;
  const auto& first = r.goals.objectives.at(0);
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
    const double va = r.metrics[size_t(a)].at(first.name), vb = r.metrics[size_t(b)].at(first.name);
    return first.maximize ? va > vb : va < vb;
  });
  std::vector<std::string> layers = r.layers;
  for (int m : members) {  // without space.json: the layers the members use, first seen first
    const json policy = specs[size_t(m)].value("policy", json::object());  // named: items() refers to it
    for (const auto& [layer, p] : policy.items())
      if (std::find(layers.begin(), layers.end(), layer) == layers.end()) layers.push_back(layer);
  }
  json cells = json::array();
  for (size_t k = 0; k < members.size(); ++k) {
    const auto& row = r.rows[size_t(members[k])];
    const json policy = specs[size_t(members[k])].value("policy", json::object());
    const std::string member = "id " + std::to_string(row.id);
    for (const auto& layer : layers) {
      json c = {{"member", member}, {"order", k}, {"layer", layer}};
      if (!policy.contains(layer)) {
        c["w"] = "inactive";
      } else {
        const auto& p = policy[layer];
        c["w"] = "W" + std::to_string(p.value("weight_bits", 32));
        c["a"] = p.value("act_bits", 32);
        c["method"] = p.value("method", std::string("?"));
      }
      cells.push_back(std::move(c));
    }
  }
  return cells;
}

json fits_json(const RunFolder& r) {
  json out = json::array();
  if (!r.fits) return out;
  const auto& t = *r.fits;
  for (size_t i = 0; i < t.rows.size(); ++i)
    out.push_back({{"iteration", int(t.number(i, "iteration"))}, {"metric", t.rows[i][t.column("metric")]},
                   {"model", t.rows[i][t.column("model")]}, {"param", t.number(i, "param")},
                   {"rows", int(t.number(i, "rows"))}, {"cv_mape", t.number(i, "cv_mape")},
                   {"kendall_tau", t.number(i, "kendall_tau")}});
  return out;
}

// The last refit's predictions against what its candidates measured, with
// their MAPE and Kendall tau (held out: the refit never saw these rows).
json predictions_json(const RunFolder& r) {
  if (!r.predictions || r.predictions->rows.empty()) return nullptr;
  const auto& t = *r.predictions;
  int last = 0;
  for (size_t i = 0; i < t.rows.size(); ++i) last = std::max(last, int(t.number(i, "iteration")));
  std::map<int, size_t> by_id;
  for (size_t i = 0; i < r.rows.size(); ++i) by_id[r.rows[i].id] = i;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> per_metric;
  json points = json::array();
  std::set<int> ids;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    if (int(t.number(i, "iteration")) != last) continue;
    const int id = int(t.number(i, "id"));
    const std::string metric = t.rows[i][t.column("metric")];
    const auto row = by_id.find(id);
    if (row == by_id.end() || !r.metrics[row->second].count(metric)) continue;
    const double predicted = t.number(i, "predicted"), measured = r.metrics[row->second].at(metric);
    points.push_back({{"id", id}, {"metric", metric}, {"predicted", predicted}, {"measured", measured}});
    per_metric[metric].first.push_back(measured), per_metric[metric].second.push_back(predicted);
    ids.insert(id);
  }
  json summary = json::array();
  for (const auto& [metric, v] : per_metric) {
    const Eigen::VectorXd truth = Eigen::Map<const Eigen::VectorXd>(v.first.data(), Eigen::Index(v.first.size()));
    const Eigen::VectorXd pred = Eigen::Map<const Eigen::VectorXd>(v.second.data(), Eigen::Index(v.second.size()));
    summary.push_back({{"metric", metric}, {"rows", truth.size()},
                       {"mape", std::round(predictors::mape(truth, pred) * 1000) / 1000},
                       {"kendall_tau", truth.size() > 1 ? std::round(predictors::kendall_tau(truth, pred) * 1000) / 1000 : 0.0}});
  }
  return {{"iteration", last}, {"rows", ids.size()}, {"points", points}, {"summary", summary}};
}

// Where the run ran: its last session's record (run.json), else the latency
// table's host and the config's threads.
json machine_json(const RunFolder& r) {
  json m = {{"cpu", "not recorded"}, {"cores", "not recorded"}, {"threads", r.config.threads},
            {"processes", "1 process"}, {"qnas", "not recorded"}, {"sessions", 0}};
  json host = nullptr;
  if (r.run_info.is_object() && r.run_info.value("sessions", json::array()).size() > 0) {
    const auto& last = r.run_info["sessions"].back();
    host = last.value("host", json(nullptr));
    m["threads"] = last.value("threads_per_process", r.config.threads);
    m["processes"] = last.value("world", std::string("?"));
    m["qnas"] = last.value("qnas_version", std::string("?"));
    m["sessions"] = r.run_info["sessions"].size();
  } else if (r.latency_identity.is_object()) {
    host = r.latency_identity.value("host", json(nullptr));
  }
  if (host.is_object()) m["cpu"] = host.value("cpu", "unknown"), m["cores"] = host.value("cores", 0);
  return m;
}

double column_sum(const std::optional<search::CsvTable>& t, const std::string& column) {
  double s = 0;
  for (size_t i = 0; t && i < t->rows.size(); ++i) s += t->number(i, column);
  return s;
}

json phases_json(const RunFolder& r) {
  json out = json::array();
  auto add = [&](const std::string& phase, double s, const std::string& source) {
    out.push_back({{"phase", phase}, {"seconds", s}, {"source", source}});
  };
  if (r.train_log) add("supernet training", column_sum(r.train_log, "epoch_s"), "train_log.csv, epoch_s");
  if (r.hypervolume_log) {
    add("search: proposals (tactic, predictor refits)", column_sum(r.hypervolume_log, "propose_s"), "hypervolume.csv, propose_s");
    add("search: validation (the candidates' own time)", column_sum(r.hypervolume_log, "eval_s"), "hypervolume.csv, eval_s");
    add("search: wall time", column_sum(r.hypervolume_log, "wall_s"), "hypervolume.csv, wall_s");
  }
  return out;
}

// --- Across runs ---------------------------------------------------------------------------

std::string six_digits(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// One reference so hypervolumes compare: a run's own (state.json, else
// derived from its rows like the search does), the worst of them for several.
std::pair<search::Point, std::string> common_reference(const std::vector<RunFolder>& runs) {
  const auto& goals = runs.front().goals;
  std::optional<search::Point> worst;
  for (const auto& r : runs) {
    if (r.rows.empty()) continue;
    const auto own = r.own_reference ? *r.own_reference : search::default_reference(r.goals, r.metrics);
    if (!worst) {
      worst = own;
      continue;
    }
    for (size_t k = 0; k < own.size(); ++k)
      (*worst)[k] = goals.objectives[k].maximize ? std::min((*worst)[k], own[k]) : std::max((*worst)[k], own[k]);
  }
  if (!worst) return {{}, "No validated candidate yet, so no hypervolume."};
  std::string text;
  for (size_t k = 0; k < worst->size(); ++k)
    text += (k ? ", " : "") + goals.objectives[k].name + " " + six_digits((*worst)[k]);
  const bool own = runs.size() == 1 && runs.front().own_reference;
  return {*worst, "Hypervolume of the feasible rows validated so far against the reference point (" + text + "): " +
                      (runs.size() == 1 ? (own ? "the run's own (state.json), as in its hypervolume.csv."
                                               : "derived from the rows as the search derives it.")
                                        : "the worst of the runs' own reference points, so their curves compare "
                                          "(each run's hypervolume.csv keeps its own).")};
}

// Hypervolume after `n` rows for each n of `grid` up to the run's rows.
std::vector<std::pair<int, double>> hypervolume_curve(const RunFolder& r, const search::Point& ref,
                                                      const std::vector<int>& grid) {
  std::vector<std::pair<int, double>> out;
  for (int n : grid) {
    if (n > int(r.metrics.size())) break;
    const std::vector<search::MetricValues> prefix(r.metrics.begin(), r.metrics.begin() + n);
    out.push_back({n, search::rows_hypervolume(r.goals, prefix, ref)});
  }
  return out;
}

// Evaluation counts to draw at: about 400 steps, and every run's last row.
std::vector<int> evaluation_grid(const std::vector<RunFolder>& runs) {
  size_t most = 0;
  for (const auto& r : runs) most = std::max(most, r.rows.size());
  const int step = std::max(1, int(most / 400));
  std::set<int> grid;
  for (int n = step; n <= int(most); n += step) grid.insert(n);
  for (const auto& r : runs)
    if (!r.rows.empty()) grid.insert(int(r.rows.size()));
  return {grid.begin(), grid.end()};
}

// Mean, minimum and maximum over the runs of each tactic that reached each count.
json tactic_groups(const std::vector<std::string>& tactics, const std::vector<std::vector<std::pair<int, double>>>& curves) {
  std::map<std::string, std::map<int, std::vector<double>>> by;
  std::map<std::string, int> runs;
  for (size_t i = 0; i < tactics.size(); ++i) {
    ++runs[tactics[i]];
    for (const auto& [n, hv] : curves[i]) by[tactics[i]][n].push_back(hv);
  }
  json out = json::array();
  for (const auto& [tactic, points] : by) {
    json p = json::array();
    for (const auto& [n, v] : points) {
      double sum = 0;
      for (double x : v) sum += x;
      p.push_back({{"evaluations", n}, {"mean", sum / double(v.size())}, {"lo", *std::min_element(v.begin(), v.end())},
                   {"hi", *std::max_element(v.begin(), v.end())}, {"runs_here", v.size()}});
    }
    out.push_back({{"tactic", tactic}, {"runs", runs[tactic]}, {"points", p}});
  }
  return out;
}

std::string objectives_text(const search::Goals& g) {
  std::string s;
  for (const auto& o : g.objectives) s += (s.empty() ? "" : ", ") + o.name + (o.maximize ? ":max" : ":min");
  return s;
}

std::vector<std::string> unique_names(const std::vector<RunFolder>& runs) {
  std::vector<std::string> names;
  for (const auto& r : runs) {
    std::string name = r.name;
    for (int k = 2; std::find(names.begin(), names.end(), name) != names.end(); ++k) name = r.name + " (" + std::to_string(k) + ")";
    names.push_back(name);
  }
  return names;
}

}  // namespace

json collect(const std::vector<std::string>& run_dirs) {
  QNAS_CHECK(!run_dirs.empty(), "report: no run folder given");
  std::vector<RunFolder> runs;
  for (const auto& d : run_dirs) runs.push_back(read_run(d));
  const auto names = unique_names(runs);
  for (size_t i = 0; i < runs.size(); ++i) {
    runs[i].name = names[i];
    QNAS_CHECK(objectives_text(runs[i].goals) == objectives_text(runs[0].goals), "report: ", runs[i].dir,
               " searched objectives ", objectives_text(runs[i].goals), " but ", runs[0].dir, " searched ",
               objectives_text(runs[0].goals), "; runs reported together must share their objectives");
  }
  const auto [reference, reference_note] = common_reference(runs);
  const auto grid = evaluation_grid(runs);

  json data;
  data["qnas_version"] = core::version();
  std::string title;
  for (const auto& n : names) title += (title.empty() ? "" : ", ") + n;
  data["title"] = "qnas report: " + title;
  data["objectives"] = json::array();
  for (const auto& o : runs[0].goals.objectives) data["objectives"].push_back({{"name", o.name}, {"maximize", o.maximize}});
  std::set<std::string> present;
  for (const auto& r : runs)
    for (const auto& m : r.metrics)
      for (const auto& [k, v] : m) present.insert(k);
  data["metrics"] = json::array();
  for (const auto& c : search::metric_columns())
    if (present.count(c)) data["metrics"].push_back(c);
  data["reference"] = {{"point", reference}, {"note", reference_note}};
  data["rows"] = json::array();
  data["runs"] = json::array();
  std::vector<std::string> tactics;
  std::vector<std::vector<std::pair<int, double>>> curves;
  for (const auto& r : runs) {
    std::vector<json> specs;
    for (auto& row : rows_json(r, specs)) data["rows"].push_back(std::move(row));
    curves.push_back(reference.empty() ? std::vector<std::pair<int, double>>{} : hypervolume_curve(r, reference, grid));
    tactics.push_back(r.config.search.tactic);
    json hv = json::array();
    for (const auto& [n, v] : curves.back()) hv.push_back({{"evaluations", n}, {"hypervolume", v}});
    data["runs"].push_back({{"name", r.name}, {"dir", r.dir}, {"tactic", r.config.search.tactic},
                            {"seed", r.config.seed}, {"validated", r.rows.size()},
                            {"target", r.config.search.evaluations}, {"front_size", r.front.size()},
                            {"complete", int(r.rows.size()) >= r.config.search.evaluations},
                            {"notes", r.notes}, {"layers", r.layers}, {"methods", r.methods},
                            {"heatmap", heatmap_json(r, specs)}, {"hv", hv}, {"predictor_fits", fits_json(r)},
                            {"predictions", predictions_json(r)}, {"machine", machine_json(r)},
                            {"phases", phases_json(r)}, {"config_yaml", r.config_yaml}});
  }
  data["hv_groups"] = tactic_groups(tactics, curves);
  return data;
}

}  // namespace qnas::report
