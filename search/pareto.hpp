#pragma once
// Pareto machinery on objective vectors in minimisation form (maximised
// objectives are negated by the caller, see objectives.hpp): dominance with
// constraint violation (Deb's rules), fast non-dominated sorting, crowding
// distance, and exact hypervolume for 1 to 3 objectives.

#include <vector>

namespace qnas::search {

using Point = std::vector<double>;

/// a dominates b: no worse in every objective, better in one.
bool dominates(const Point& a, const Point& b);

/// Constrained dominance: a feasible point (violation 0) beats an infeasible
/// one; of two infeasible points the smaller violation wins; of two
/// feasible ones, plain dominance.
bool constrained_dominates(const Point& a, double va, const Point& b, double vb);

/// Fronts of indices, best first (Deb et al. 2002, O(M N^2)). `violation`
/// may be empty (all feasible).
std::vector<std::vector<int>> non_dominated_sort(const std::vector<Point>& points,
                                                 const std::vector<double>& violation = {});

/// Crowding distance of each member of `front` (same order); boundary points
/// get +infinity.
std::vector<double> crowding_distance(const std::vector<Point>& points, const std::vector<int>& front);

/// Indices of the non-dominated points (duplicates all kept).
std::vector<int> pareto_indices(const std::vector<Point>& points, const std::vector<double>& violation = {});

/// Volume dominated by `points` and bounded by `reference` (minimisation),
/// exact for 1, 2 and 3 objectives. Points not strictly better than the
/// reference in every objective add nothing. Invariant to order and duplicates.
double hypervolume(const std::vector<Point>& points, const Point& reference);

/// A reference point just beyond the worst of `points` (all of one size, at
/// least one): per objective the worst value plus 10 % of the range (1 % of
/// its magnitude where all values are equal), so extreme points count.
Point reference_beyond(const std::vector<Point>& points);

/// Up to `n` indices of `candidates`, chosen one at a time by the largest
/// gain in hypervolume over `base` and the candidates chosen before (a
/// batch for evaluation that spreads along the front instead of crowding
/// one part of it); candidates that add nothing (dominated, or `eligible`
/// false) follow in their given order. Ties go to the earlier candidate.
std::vector<int> greedy_hypervolume_batch(const std::vector<Point>& base, const std::vector<Point>& candidates,
                                          const std::vector<bool>& eligible, size_t n, const Point& reference);

}  // namespace qnas::search
