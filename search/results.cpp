#include "search/results.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/table.hpp"
#include "supernet/space.hpp"

#include <nlohmann/json.hpp>

namespace qnas::search {

const std::vector<std::string>& metric_columns() {
  static const std::vector<std::string> cols = {"top1",           "latency_ms",       "latency_ms_p10",
                                                "latency_ms_p90", "latency_ms_std",   "throughput_img_s",
                                                "model_bytes",    "peak_rss_bytes",   "params",
                                                "macs",           "bops",             "latency_est_ms",
                                                "latency_ratio"};
  return cols;
}

std::vector<std::string> evaluation_header() {
  std::vector<std::string> h = {"id", "iteration", "tactic", "spec_json"};
  h.insert(h.end(), metric_columns().begin(), metric_columns().end());
  h.push_back("eval_s");
  return h;
}

std::vector<std::string> row_fields(const Row& r) {
  std::vector<std::string> f = {std::to_string(r.id), std::to_string(r.iteration), r.tactic, r.spec_json};
  for (const auto& c : metric_columns()) {
    const auto it = r.metrics.find(c);
    f.push_back(it == r.metrics.end() ? "" : core::shortest(it->second));
  }
  f.push_back(core::fixed(r.eval_s, 3));
  return f;
}

size_t CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string cols;
  for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + h;
  QNAS_THROW(path, ": no column '", name, "'; columns are ", cols);
}

namespace {

// A cell as a number, then as a whole number in [0, 1e9]; `where` names it
// ("<path>: row N, column 'c'").
double cell_number(const std::string& cell, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  QNAS_CHECK(!cell.empty() && *end == '\0' && std::isfinite(v), where, " is '", cell, "'; expected a number");
  return v;
}

int cell_integer(const std::string& cell, const std::string& where) {
  const double v = cell_number(cell, where);
  QNAS_CHECK(v >= 0 && v <= 1e9 && v == std::floor(v), where, " is ", cell, "; expected a whole number in [0, 1e9]");
  return int(v);
}

std::string cell_place(const std::string& path, size_t row, const std::string& column) {
  return path + ": row " + std::to_string(row + 1) + ", column '" + column + "'";
}

}  // namespace

int CsvTable::integer(size_t row, const std::string& name) const {
  return cell_integer(rows.at(row)[column(name)], cell_place(path, row, name));
}

double CsvTable::number(size_t row, const std::string& name) const {
  return cell_number(rows.at(row)[column(name)], cell_place(path, row, name));
}

CsvTable read_csv(const std::string& path, bool* incomplete) {
  return parse_csv(core::read_text_file(path, "CSV"), path, incomplete);
}

CsvTable parse_csv(const std::string& text, const std::string& path, bool* incomplete) {
  CsvTable t;
  t.path = path;
  if (incomplete) *incomplete = false;
  // Split into records: newlines inside quotes belong to the field.
  std::vector<std::string> records;
  std::string cur;
  bool quoted = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (c == '\n' && !quoted) {
      records.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) {
    QNAS_CHECK(incomplete, path, ": the last line is incomplete (no newline); expected whole rows");
    *incomplete = true;
  }
  QNAS_CHECK(!records.empty(), path, ": empty; expected a header line");
  t.header = core::csv_split(records[0]);
  for (size_t i = 1; i < records.size(); ++i) {
    auto fields = core::csv_split(records[i]);
    QNAS_CHECK(fields.size() == t.header.size(), path, ": line ", i + 1, " has ", fields.size(), " fields; expected ",
               t.header.size());
    t.rows.push_back(std::move(fields));
  }
  return t;
}

std::vector<Row> read_rows(const CsvTable& t) {
  QNAS_CHECK(t.header == evaluation_header(), t.path, ": not an evaluations.csv of this qnas version (header differs)");
  std::vector<Row> rows;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    Row r;
    r.id = t.integer(i, "id");
    r.iteration = t.integer(i, "iteration");
    r.tactic = t.rows[i][t.column("tactic")];
    r.spec_json = t.rows[i][t.column("spec_json")];
    for (const auto& c : metric_columns())
      if (!t.rows[i][t.column(c)].empty()) r.metrics[c] = t.number(i, c);
    r.eval_s = t.number(i, "eval_s");
    rows.push_back(std::move(r));
  }
  return rows;
}

supernet::SubnetSpec parse_row_spec(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    QNAS_THROW(where, ": spec_json is not valid JSON (", e.what(), ")");
  }
  return supernet::spec_from_json(j, where);
}

int first_cell_integer(const std::vector<std::string>& row, const std::string& path) {
  return cell_integer(row.empty() ? std::string() : row[0], cell_place(path, 0, "first"));
}

void filter_csv(const std::string& path, const std::function<bool(const std::vector<std::string>&)>& keep) {
  bool incomplete = false;
  const CsvTable t = read_csv(path, &incomplete);
  std::string out = core::csv_line(t.header);
  for (const auto& r : t.rows)
    if (keep(r)) out += core::csv_line(r);
  core::write_file_atomic(path, out);
}

}  // namespace qnas::search

namespace qnas::search {

SpecFeatures spec_features(const std::vector<std::string>& spec_jsons, const std::string& where) {
  SpecFeatures f;
  std::map<std::string, int> index;
  const auto column = [&](const std::string& token) {
    const auto it = index.find(token);
    if (it != index.end()) return it->second;
    f.columns.push_back(token);
    return index[token] = int(f.columns.size() - 1);
  };
  for (size_t r = 0; r < spec_jsons.size(); ++r) {
    const auto spec = parse_row_spec(spec_jsons[r], where + ": row " + std::to_string(r + 1));
    std::vector<int> active;
    for (const auto& [name, value] : spec.arch) active.push_back(column(name + "=" + std::to_string(value)));
    for (const auto& [layer, p] : spec.policy) {
      nlohmann::json pj = p;
      for (const auto& [field, value] : pj.items()) active.push_back(column(layer + "." + field + "=" + value.dump()));
    }
    f.active.push_back(std::move(active));
  }
  return f;
}

}  // namespace qnas::search
