// What the search derives from evaluations.csv rows: their genomes in a
// space, and how an estimated metric agrees with a measured one.
#include <cmath>

#include "predictors/predictor.hpp"
#include "search/results.hpp"
#include "src/eval/latency.hpp"

namespace qnas::search {

EstimateAgreement estimate_agreement(const std::vector<Row>& rows, const std::string& estimate,
                                     const std::string& measured) {
  std::vector<double> est, real, error;
  for (const auto& r : rows) {
    const auto e = r.metrics.find(estimate), m = r.metrics.find(measured);
    if (e == r.metrics.end() || m == r.metrics.end() || !(m->second > 0)) continue;
    est.push_back(e->second);
    real.push_back(m->second);
    error.push_back(100.0 * std::abs(e->second - m->second) / m->second);
  }
  EstimateAgreement a;
  a.rows = int(est.size());
  if (a.rows < 2) return a;
  const auto n = Eigen::Index(est.size());
  a.median_abs_pct_error = eval::median(error);
  a.kendall_tau = predictors::kendall_tau(Eigen::Map<const Eigen::VectorXd>(est.data(), n),
                                          Eigen::Map<const Eigen::VectorXd>(real.data(), n));
  return a;
}

Genome row_genome(const Space& space, const Row& row, const std::string& where) {
  return space.encode(parse_row_spec(row.spec_json, where + ": row id " + std::to_string(row.id)));
}

}  // namespace qnas::search
