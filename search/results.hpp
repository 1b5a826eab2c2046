#pragma once
// The search's files, as DESIGN.md fixes them:
//   evaluations.csv  id, iteration, tactic, spec_json, <metrics...>, eval_s
//                    (one row per validated candidate, flushed as measured)
//   pareto.csv       the same columns, non-dominated feasible rows only
// plus readers for any such CSV (`qnas pareto`, `qnas predict`).

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "search/objectives.hpp"
#include "search/space.hpp"

namespace qnas::search {

/// Metric columns of evaluations.csv, in order.
const std::vector<std::string>& metric_columns();
/// How an estimated metric agrees with a measured one over the rows that
/// hold both: median of |estimate - measured| / measured in percent, and
/// Kendall's tau-b between them.
struct EstimateAgreement {
  int rows = 0;
  double median_abs_pct_error = 0, kendall_tau = 0;
};

/// The whole header of evaluations.csv / pareto.csv.
std::vector<std::string> evaluation_header();

struct Row {
  int id = 0;
  int iteration = 0;
  std::string tactic;
  std::string spec_json;  // compact JSON of the SubnetSpec
  MetricValues metrics;   // only the measured ones
  double eval_s = 0;
};

/// The CSV fields of a row under evaluation_header().
std::vector<std::string> row_fields(const Row& row);

EstimateAgreement estimate_agreement(const std::vector<Row>& rows, const std::string& estimate,
                                     const std::string& measured);

/// A CSV file as text cells; `path` names it in errors.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  /// Index of `column`; throws listing the columns when absent.
  size_t column(const std::string& name) const;
  /// Numeric cell; throws naming row and column when empty or not a number.
  double number(size_t row, const std::string& name) const;
  /// A whole number in [0, 1e9] (ids, iterations); throws naming row and column otherwise.
  int integer(size_t row, const std::string& name) const;
};

/// Reads a CSV; an incomplete last line (a writer killed mid-row) is
/// dropped and reported in `*incomplete` when given, else an error.
CsvTable read_csv(const std::string& path, bool* incomplete = nullptr);
/// The same on a CSV's text; `path` names it in errors.
CsvTable parse_csv(const std::string& text, const std::string& path, bool* incomplete = nullptr);

/// Rows of an evaluations.csv written by qnas.
std::vector<Row> read_rows(const CsvTable& table);

/// The spec in a row's spec_json; throws naming `where` when the JSON is
/// malformed or not a spec.
supernet::SubnetSpec parse_row_spec(const std::string& text, const std::string& where);

/// The genome of a row's spec_json; throws naming `where` when the JSON is
/// malformed or the spec is not in `space`.
Genome row_genome(const Space& space, const Row& row, const std::string& where);

/// The whole number in a row's first cell (a log's id or iteration); throws
/// naming `path` when it is not one.
int first_cell_integer(const std::vector<std::string>& row, const std::string& path);

/// Rewrites `path` atomically keeping the header and the rows `keep` accepts.
void filter_csv(const std::string& path, const std::function<bool(const std::vector<std::string>&)>& keep);

}  // namespace qnas::search

namespace qnas::search {

/// One-hot features of specs read from a CSV, without the space: one column
/// per (variable, value) seen, e.g. "s0.depth=2", "stem.weight_bits=8".
/// Variables absent from a spec (depth-cut blocks) are all zeros, as in
/// LINAS's masked one-hot, so the fits match the search's up to all-zero
/// columns.
struct SpecFeatures {
  std::vector<std::string> columns;
  std::vector<std::vector<int>> active;  // per row, the columns set to 1
};
SpecFeatures spec_features(const std::vector<std::string>& spec_jsons, const std::string& where);

}  // namespace qnas::search
