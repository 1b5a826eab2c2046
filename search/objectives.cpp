#include "search/objectives.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "src/core/error.hpp"

namespace qnas::search {

Constraint parse_constraint(const std::string& name, const std::string& text) {
  const auto op = text.find_first_of("<>");
  QNAS_CHECK(op != std::string::npos && op + 1 < text.size() && text[op + 1] == '=', "constraint ", name, ": '",
             text, "'; expected \"<= number\" or \">= number\"");
  Constraint c;
  c.name = name;
  c.upper = text[op] == '<';
  char* end = nullptr;
  c.bound = std::strtod(text.c_str() + op + 2, &end);
  QNAS_CHECK(end != text.c_str() + op + 2 && std::isfinite(c.bound), "constraint ", name, ": '", text,
             "'; expected a number after the comparison");
  return c;
}

Goals Goals::from_config(const core::SearchConfig& cfg) {
  Goals g;
  for (const auto& [name, sense] : cfg.objectives) g.objectives.push_back({name, sense == "max"});
  for (const auto& [name, text] : cfg.constraints) g.constraints.push_back(parse_constraint(name, text));
  return g;
}

Goals Goals::parse_objectives(const std::string& text) {
  Goals g;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    const auto colon = item.find(':');
    const std::string name = item.substr(0, colon), sense = colon == std::string::npos ? "" : item.substr(colon + 1);
    QNAS_CHECK(!name.empty() && (sense == "max" || sense == "min"), "objective '", item,
               "'; expected NAME:max or NAME:min (e.g. top1:max,latency_ms:min)");
    g.objectives.push_back({name, sense == "max"});
  }
  QNAS_CHECK(!g.objectives.empty() && g.objectives.size() <= 3, "objectives '", text, "': ", g.objectives.size(),
             " given; expected 1 to 3");
  return g;
}

namespace {
double metric(const MetricValues& m, const std::string& name) {
  const auto it = m.find(name);
  QNAS_CHECK(it != m.end() && std::isfinite(it->second), "metric '", name,
             "' is missing or not a number in a row; expected it measured for every candidate");
  return it->second;
}
}  // namespace

Point Goals::to_min(const MetricValues& m) const {
  Point p;
  for (const auto& o : objectives) p.push_back(o.maximize ? -metric(m, o.name) : metric(m, o.name));
  return p;
}

double Goals::from_min(size_t i, double value) const { return objectives[i].maximize ? -value : value; }

double Goals::violation(const MetricValues& m) const {
  double total = 0;
  for (const auto& c : constraints) {
    const double v = metric(m, c.name);
    const double excess = c.upper ? v - c.bound : c.bound - v;
    if (excess > 0) total += excess / std::max(std::abs(c.bound), 1e-12);
  }
  return total;
}

std::vector<std::string> Goals::metric_names() const {
  std::vector<std::string> names;
  for (const auto& o : objectives) names.push_back(o.name);
  for (const auto& c : constraints)
    if (std::find(names.begin(), names.end(), c.name) == names.end()) names.push_back(c.name);
  return names;
}

}  // namespace qnas::search
