#include "search/pareto.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "src/core/error.hpp"

namespace qnas::search {

bool dominates(const Point& a, const Point& b) {
  bool better = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) better = true;
  }
  return better;
}

bool constrained_dominates(const Point& a, double va, const Point& b, double vb) {
  if (va <= 0 && vb <= 0) return dominates(a, b);
  if (va <= 0) return true;
  if (vb <= 0) return false;
  return va < vb;
}

std::vector<std::vector<int>> non_dominated_sort(const std::vector<Point>& points,
                                                 const std::vector<double>& violation) {
  const int n = int(points.size());
  const auto v = [&](int i) { return violation.empty() ? 0.0 : violation[size_t(i)]; };
  std::vector<std::vector<int>> dominated_by_me(static_cast<size_t>(n));
  std::vector<int> count(size_t(n), 0);
  std::vector<std::vector<int>> fronts(1);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      if (constrained_dominates(points[size_t(i)], v(i), points[size_t(j)], v(j))) {
        dominated_by_me[size_t(i)].push_back(j);
        ++count[size_t(j)];
      } else if (constrained_dominates(points[size_t(j)], v(j), points[size_t(i)], v(i))) {
        dominated_by_me[size_t(j)].push_back(i);
        ++count[size_t(i)];
      }
    }
  for (int i = 0; i < n; ++i)
    if (count[size_t(i)] == 0) fronts[0].push_back(i);
  while (!fronts.back().empty()) {
    std::vector<int> next;
    for (int i : fronts.back())
      for (int j : dominated_by_me[size_t(i)])
        if (--count[size_t(j)] == 0) next.push_back(j);
    std::sort(next.begin(), next.end());
    fronts.push_back(std::move(next));
  }
  fronts.pop_back();
  return fronts;
}

std::vector<double> crowding_distance(const std::vector<Point>& points, const std::vector<int>& front) {
  const size_t n = front.size();
  std::vector<double> dist(n, 0.0);
  if (n == 0) return dist;
  const double inf = std::numeric_limits<double>::infinity();
  const size_t m = points[size_t(front[0])].size();
  std::vector<size_t> order(n);
  for (size_t k = 0; k < m; ++k) {
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return points[size_t(front[a])][k] < points[size_t(front[b])][k];
    });
    const double lo = points[size_t(front[order.front()])][k], hi = points[size_t(front[order.back()])][k];
    dist[order.front()] = dist[order.back()] = inf;
    if (hi <= lo) continue;
    for (size_t i = 1; i + 1 < n; ++i)
      dist[order[i]] += (points[size_t(front[order[i + 1]])][k] - points[size_t(front[order[i - 1]])][k]) / (hi - lo);
  }
  return dist;
}

std::vector<int> pareto_indices(const std::vector<Point>& points, const std::vector<double>& violation) {
  if (points.empty()) return {};
  return non_dominated_sort(points, violation)[0];
}

namespace {

// Points strictly inside the reference box.
std::vector<Point> inside(const std::vector<Point>& points, const Point& ref) {
  std::vector<Point> out;
  for (const auto& p : points) {
    QNAS_CHECK(p.size() == ref.size(), "hypervolume: a point of ", p.size(), " objectives, reference of ", ref.size());
    bool in = true;
    for (size_t i = 0; i < p.size(); ++i) in = in && p[i] < ref[i];
    if (in) out.push_back(p);
  }
  return out;
}

// Exact 2-D area by slabs between consecutive x of the staircase.
double area2(std::vector<Point> pts, double rx, double ry) {
  std::sort(pts.begin(), pts.end());
  double volume = 0, best_y = ry;
  for (size_t i = 0; i < pts.size(); ++i) {
    best_y = std::min(best_y, pts[i][1]);
    const double right = i + 1 < pts.size() ? pts[i + 1][0] : rx;
    volume += (right - pts[i][0]) * (ry - best_y);
  }
  return volume;
}

}  // namespace

double hypervolume(const std::vector<Point>& points, const Point& ref) {
  QNAS_CHECK(!ref.empty() && ref.size() <= 3, "hypervolume: ", ref.size(), " objectives; expected 1, 2 or 3");
  auto pts = inside(points, ref);
  if (pts.empty()) return 0.0;
  if (ref.size() == 1) {
    double best = ref[0];
    for (const auto& p : pts) best = std::min(best, p[0]);
    return ref[0] - best;
  }
  if (ref.size() == 2) return area2(pts, ref[0], ref[1]);
  // 3-D: slabs along z; each slab's area is the 2-D hypervolume of the
  // points at or below its bottom.
  std::sort(pts.begin(), pts.end(), [](const Point& a, const Point& b) { return a[2] < b[2]; });
  double volume = 0;
  std::vector<Point> below;
  for (size_t i = 0; i < pts.size(); ++i) {
    below.push_back({pts[i][0], pts[i][1]});
    const double top = i + 1 < pts.size() ? pts[i + 1][2] : ref[2];
    if (top > pts[i][2]) volume += (top - pts[i][2]) * area2(below, ref[0], ref[1]);
  }
  return volume;
}

Point reference_beyond(const std::vector<Point>& points) {
  QNAS_CHECK(!points.empty(), "reference point: no points to derive it from");
  Point ref;
  for (size_t k = 0; k < points[0].size(); ++k) {
    double worst = -std::numeric_limits<double>::infinity(), best = std::numeric_limits<double>::infinity();
    for (const auto& p : points) worst = std::max(worst, p[k]), best = std::min(best, p[k]);
    ref.push_back(worst + (worst > best ? 0.1 * (worst - best) : 0.01 * std::max(std::abs(worst), 1e-12)));
  }
  return ref;
}

std::vector<int> greedy_hypervolume_batch(const std::vector<Point>& base, const std::vector<Point>& candidates,
                                          const std::vector<bool>& eligible, size_t n, const Point& reference) {
  QNAS_CHECK(eligible.size() == candidates.size(), "greedy_hypervolume_batch: ", eligible.size(),
             " eligibility flags for ", candidates.size(), " candidates");
  std::vector<Point> chosen_points;
  for (int i : pareto_indices(base)) chosen_points.push_back(base[size_t(i)]);
  double volume = chosen_points.empty() ? 0.0 : hypervolume(chosen_points, reference);
  std::vector<int> chosen;
  std::vector<bool> taken(candidates.size(), false);
  while (chosen.size() < n) {
    int best = -1;
    double best_gain = 0;
    for (size_t c = 0; c < candidates.size(); ++c) {
      if (taken[c] || !eligible[c]) continue;
      chosen_points.push_back(candidates[c]);
      const double gain = hypervolume(chosen_points, reference) - volume;
      chosen_points.pop_back();
      if (gain > best_gain) best = int(c), best_gain = gain;
    }
    if (best < 0) break;
    taken[size_t(best)] = true;
    chosen.push_back(best);
    chosen_points.push_back(candidates[size_t(best)]);
    volume = hypervolume(chosen_points, reference);
  }
  for (size_t c = 0; c < candidates.size() && chosen.size() < n; ++c)
    if (!taken[c]) chosen.push_back(int(c));
  return chosen;
}

}  // namespace qnas::search
