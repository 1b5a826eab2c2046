#include "predictors/features.hpp"

#include "src/core/error.hpp"

namespace qnas::predictors {

OneHotEncoder::OneHotEncoder(std::vector<int> cardinalities) : cardinalities_(std::move(cardinalities)) {
  for (int c : cardinalities_) {
    QNAS_CHECK(c >= 1, "one-hot: a variable with ", c, " choices; expected at least 1");
    offsets_.push_back(width_);
    width_ += c;
  }
}

Eigen::MatrixXd OneHotEncoder::encode(const std::vector<Genome>& genomes) const {
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(Eigen::Index(genomes.size()), width_);
  for (size_t r = 0; r < genomes.size(); ++r) {
    const auto& g = genomes[r];
    QNAS_CHECK(g.size() == cardinalities_.size(), "one-hot: genome of ", g.size(), " values; expected ",
               cardinalities_.size());
    for (size_t v = 0; v < g.size(); ++v) {
      if (g[v] == kInactive) continue;
      QNAS_CHECK(g[v] >= 0 && g[v] < cardinalities_[v], "one-hot: variable ", v, " has choice index ", g[v],
                 "; expected 0..", cardinalities_[v] - 1);
      x(Eigen::Index(r), column(int(v), g[v])) = 1.0;
    }
  }
  return x;
}

Eigen::MatrixXd hstack(const Eigen::MatrixXd& left, const Eigen::MatrixXd& right) {
  QNAS_CHECK(left.rows() == right.rows(), "features: stacking ", left.rows(), " rows beside ", right.rows());
  Eigen::MatrixXd out(left.rows(), left.cols() + right.cols());
  out << left, right;
  return out;
}

}  // namespace qnas::predictors
