#pragma once
// Feature encoding for the predictors: one-hot of every categorical variable,
// with variables that are inactive in a row (a block removed by depth)
// masked to all zeros, as DyNAS-T does; optional extra real-valued columns
// (exact proxies such as MACs) are appended by the caller. Plain Eigen.

#include <Eigen/Dense>

#include <vector>

namespace qnas::predictors {

/// A row of choice indices, one per variable; kInactive masks a variable.
using Genome = std::vector<int>;
inline constexpr int kInactive = -1;

class OneHotEncoder {
 public:
  /// `cardinalities[i]`: number of choices of variable i.
  explicit OneHotEncoder(std::vector<int> cardinalities);

  int width() const { return width_; }
  int variables() const { return int(cardinalities_.size()); }
  /// Column of choice `c` of variable `v`.
  int column(int v, int c) const { return offsets_[size_t(v)] + c; }

  /// One row per genome; throws when a genome has the wrong length or an
  /// index outside its variable's choices.
  Eigen::MatrixXd encode(const std::vector<Genome>& genomes) const;

 private:
  std::vector<int> cardinalities_, offsets_;
  int width_ = 0;
};

/// [left | right] (same rows).
Eigen::MatrixXd hstack(const Eigen::MatrixXd& left, const Eigen::MatrixXd& right);

}  // namespace qnas::predictors
