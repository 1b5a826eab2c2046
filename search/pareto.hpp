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

}  // namespace qnas::search
