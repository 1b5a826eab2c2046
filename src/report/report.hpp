#pragma once
// `qnas report`: one self-contained HTML page of one or several search runs
// (their output.dir folders). The page holds the runs' data as JSON and the
// charting library (Vega-Lite on Vega, embedded by vega-embed; npm, inlined at
// report time), so it opens offline from disk and makes no network request.
//
// What the page shows, per DESIGN.md's run files:
//   evaluations.csv   every validated candidate: Pareto scatters of each pair
//                     of objectives, the front table, per-layer policy heatmap
//   hypervolume.csv   time per phase (the hypervolume curves are recomputed
//                     from the rows against one reference so runs compare)
//   predictors.csv    CV MAPE and Kendall tau per refit (LINAS)
//   predictions.csv   the last refit's predictions of the candidates it chose
//   space.json        the compressible layers in network order
//   config.resolved.yaml, state.json, run.json, train_log.csv, dist.json
// A run killed mid-search is reported with what it has, and says so.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qnas::report {

/// The data the page draws, from these run folders. Throws qnas::Error
/// naming a folder that is not a search run, or runs whose objectives differ.
nlohmann::json collect(const std::vector<std::string>& run_dirs);

/// The self-contained page drawing `data` (as collect() returns it).
std::string render_page(const nlohmann::json& data);

/// collect() then render_page(), written atomically to `out` (and the data
/// as JSON to `data_out` unless empty); returns the page's size in bytes.
size_t write_report(const std::vector<std::string>& run_dirs, const std::string& out, const std::string& data_out = "");

}  // namespace qnas::report
