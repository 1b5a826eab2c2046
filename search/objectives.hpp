#pragma once
// What a search optimises and what it must respect, from the config's
// `search.objectives` ({top1: max, latency_ms: min}) and `search.constraints`
// ({latency_ms: "<= 3.0"}). Objective vectors are in minimisation form:
// maximised metrics are negated.

#include <map>
#include <string>
#include <vector>

#include "search/pareto.hpp"
#include "src/core/config.hpp"

namespace qnas::search {

using MetricValues = std::map<std::string, double>;

struct Objective {
  std::string name;
  bool maximize = false;
};

struct Constraint {
  std::string name;
  bool upper = true;  // "<= bound" (else ">= bound")
  double bound = 0;
};

struct Goals {
  std::vector<Objective> objectives;
  std::vector<Constraint> constraints;

  /// From the validated config section.
  static Goals from_config(const core::SearchConfig& cfg);
  /// "top1:max,latency_ms:min" (the `qnas pareto` syntax); throws naming the item.
  static Goals parse_objectives(const std::string& text);

  /// Minimisation vector; throws naming a metric the row lacks.
  Point to_min(const MetricValues& m) const;
  /// The objective's own units from a minimisation value.
  double from_min(size_t objective, double value) const;
  /// Sum of relative constraint violations (0 = feasible).
  double violation(const MetricValues& m) const;
  /// Objective names, then constraint-only names.
  std::vector<std::string> metric_names() const;
};

/// Parses "<= 3.0" / ">= 85" (already validated by the config).
Constraint parse_constraint(const std::string& name, const std::string& text);

}  // namespace qnas::search
