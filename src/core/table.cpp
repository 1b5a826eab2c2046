#include "src/core/table.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"

namespace qnas::core {

void Table::add(std::vector<std::string> row) {
  QNAS_CHECK(row.size() == header_.size(), "table row has ", row.size(), " cells; expected ", header_.size());
  rows_.push_back(std::move(row));
}

bool Table::valid_format(const std::string& f) { return f == "text" || f == "csv" || f == "md" || f == "json"; }

std::string Table::render(const std::string& format) const {
  QNAS_CHECK(valid_format(format), "output format '", format, "'; expected text, csv, md or json");
  std::string out;
  if (format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& row : rows_) {
      nlohmann::json obj;
      for (size_t i = 0; i < row.size(); ++i) {
        // Numbers stay numbers in JSON.
        char* end = nullptr;
        const double v = std::strtod(row[i].c_str(), &end);
        if (!row[i].empty() && end && *end == '\0') obj[header_[i]] = v;
        else obj[header_[i]] = row[i];
      }
      arr.push_back(obj);
    }
    return arr.dump(2) + "\n";
  }
  if (format == "csv") {
    auto line = [](const std::vector<std::string>& r) {
      std::string s;
      for (size_t i = 0; i < r.size(); ++i) s += (i ? "," : "") + csv_field(r[i]);
      return s + "\n";
    };
    out = line(header_);
    for (const auto& r : rows_) out += line(r);
    return out;
  }
  std::vector<size_t> width(header_.size());
  for (size_t i = 0; i < header_.size(); ++i) width[i] = header_[i].size();
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  const bool md = format == "md";
  auto line = [&](const std::vector<std::string>& r) {
    std::string s = md ? "| " : "";
    for (size_t i = 0; i < r.size(); ++i) {
      s += r[i] + std::string(width[i] - r[i].size(), ' ');
      s += (i + 1 < r.size()) ? (md ? " | " : "  ") : (md ? " |" : "");
    }
    while (!md && !s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  out = line(header_);
  if (md) {
    std::vector<std::string> sep;
    for (size_t w : width) sep.push_back(std::string(std::max<size_t>(3, w), '-'));
    out += line(sep);
  }
  for (const auto& r : rows_) out += line(r);
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string significant(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string si(double v) {
  const double a = std::fabs(v);
  if (a >= 1e9) return fixed(v / 1e9, 2) + "G";
  if (a >= 1e6) return fixed(v / 1e6, 2) + "M";
  if (a >= 1e3) return fixed(v / 1e3, 2) + "k";
  return fixed(v, 0);
}

std::string shortest(double v) {
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace qnas::core
