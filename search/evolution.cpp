#include "search/evolution.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "src/core/error.hpp"

namespace qnas::search {

Operators Operators::from_config(const core::SearchConfig& cfg) {
  return {cfg.crossover_prob, cfg.crossover_eta, cfg.mutation_prob, cfg.mutation_eta};
}

// --- Operators -----------------------------------------------------------------

namespace {

int round_clip(double x, int card) { return std::clamp(int(std::lround(x)), 0, card - 1); }

// Deb's bounded SBX spread factor for one side.
double sbx_betaq(double beta, double eta, double u) {
  const double alpha = 2.0 - std::pow(beta, -(eta + 1.0));
  return u <= 1.0 / alpha ? std::pow(u * alpha, 1.0 / (eta + 1.0))
                          : std::pow(1.0 / (2.0 - u * alpha), 1.0 / (eta + 1.0));
}

}  // namespace

std::pair<Genome, Genome> sbx(const Genome& a, const Genome& b, const std::vector<int>& card, double eta,
                              core::Rng& rng) {
  Genome c1 = a, c2 = b;
  for (size_t i = 0; i < a.size(); ++i) {
    const double u_var = core::uniform01(rng), u = core::uniform01(rng), u_swap = core::uniform01(rng);
    if (card[i] < 2 || u_var >= 0.5 || a[i] == b[i]) continue;
    const double lo = 0, hi = card[i] - 1;
    const double y1 = std::min(a[i], b[i]), y2 = std::max(a[i], b[i]), d = y2 - y1;
    const double v1 = 0.5 * (y1 + y2 - sbx_betaq(1.0 + 2.0 * (y1 - lo) / d, eta, u) * d);
    const double v2 = 0.5 * (y1 + y2 + sbx_betaq(1.0 + 2.0 * (hi - y2) / d, eta, u) * d);
    c1[i] = round_clip(v1, card[i]);
    c2[i] = round_clip(v2, card[i]);
    if (u_swap < 0.5) std::swap(c1[i], c2[i]);
  }
  return {c1, c2};
}

void polynomial_mutation(Genome& g, const std::vector<int>& card, double prob, double eta, core::Rng& rng) {
  for (size_t i = 0; i < g.size(); ++i) {
    const double u_mut = core::uniform01(rng), r = core::uniform01(rng);
    if (card[i] < 2 || u_mut >= prob) continue;
    const double range = card[i] - 1, x = g[i];
    const double d1 = x / range, d2 = (range - x) / range, power = 1.0 / (eta + 1.0);
    double dq;
    if (r < 0.5) {
      const double val = 2.0 * r + (1.0 - 2.0 * r) * std::pow(1.0 - d1, eta + 1.0);
      dq = std::pow(val, power) - 1.0;
    } else {
      const double val = 2.0 * (1.0 - r) + 2.0 * (r - 0.5) * std::pow(1.0 - d2, eta + 1.0);
      dq = 1.0 - std::pow(val, power);
    }
    g[i] = round_clip(x + dq * range, card[i]);
  }
}

std::vector<Point> reference_directions(size_t m, size_t max_count) {
  QNAS_CHECK(m >= 1, "reference directions for ", m, " objectives");
  // Number of directions with p partitions: C(p + m - 1, m - 1).
  const auto count = [m](size_t p) {
    double c = 1;
    for (size_t k = 1; k < m; ++k) c = c * double(p + k) / double(k);
    return size_t(std::llround(c));
  };
  size_t p = 1;
  while (count(p + 1) <= max_count) ++p;
  std::vector<Point> dirs;
  std::vector<int> parts(m, 0);
  // Enumerate compositions of p into m non-negative parts.
  std::function<void(size_t, int)> rec = [&](size_t k, int left) {
    if (k + 1 == m) {
      parts[k] = left;
      Point d(m);
      for (size_t j = 0; j < m; ++j) d[j] = double(parts[j]) / double(p);
      dirs.push_back(d);
      return;
    }
    for (int v = left; v >= 0; --v) {
      parts[k] = v;
      rec(k + 1, left - v);
    }
  };
  rec(0, int(p));
  return dirs;
}

// --- Ranking -------------------------------------------------------------------

namespace {

std::vector<Point> objectives_of(const std::vector<Individual>& pool) {
  std::vector<Point> f;
  for (const auto& ind : pool) f.push_back(ind.f);
  return f;
}

std::vector<double> violations_of(const std::vector<Individual>& pool) {
  std::vector<double> v;
  for (const auto& ind : pool) v.push_back(ind.violation);
  return v;
}

// Per individual: front rank and crowding distance within its front.
struct Ranks {
  std::vector<int> rank;
  std::vector<double> crowding;
};

Ranks rank_and_crowd(const std::vector<Point>& f, const std::vector<double>& v) {
  Ranks r{std::vector<int>(f.size()), std::vector<double>(f.size())};
  const auto fronts = non_dominated_sort(f, v);
  for (size_t k = 0; k < fronts.size(); ++k) {
    const auto cd = crowding_distance(f, fronts[k]);
    for (size_t i = 0; i < fronts[k].size(); ++i) {
      r.rank[size_t(fronts[k][i])] = int(k);
      r.crowding[size_t(fronts[k][i])] = cd[i];
    }
  }
  return r;
}

// NSGA-III: normalise the members' objectives (ideal point, intercepts of
// the hyperplane through the extreme points, falling back to the worst of
// the first front when that plane is degenerate), then associate each
// member with its nearest reference direction (perpendicular distance).
struct Niches {
  std::vector<int> niche;
  std::vector<double> distance;
};

Niches associate(const std::vector<Point>& f, const std::vector<int>& members, const std::vector<int>& first_front,
                 const std::vector<Point>& dirs) {
  const size_t m = f[size_t(members[0])].size();
  Point ideal(m, std::numeric_limits<double>::infinity());
  for (int i : members)
    for (size_t j = 0; j < m; ++j) ideal[j] = std::min(ideal[j], f[size_t(i)][j]);
  // Extreme point per axis: the member minimising the achievement scalarising function.
  Eigen::MatrixXd extremes = Eigen::MatrixXd::Zero(Eigen::Index(m), Eigen::Index(m));
  for (size_t axis = 0; axis < m; ++axis) {
    double best = std::numeric_limits<double>::infinity();
    for (int i : members) {
      double asf = 0;
      for (size_t j = 0; j < m; ++j)
        asf = std::max(asf, (f[size_t(i)][j] - ideal[j]) / (j == axis ? 1.0 : 1e-6));
      if (asf < best) {
        best = asf;
        for (size_t j = 0; j < m; ++j) extremes(Eigen::Index(axis), Eigen::Index(j)) = f[size_t(i)][j] - ideal[j];
      }
    }
  }
  Point intercept(m, 0.0);
  bool ok = false;
  Eigen::FullPivLU<Eigen::MatrixXd> lu(extremes);
  if (lu.isInvertible()) {
    const Eigen::VectorXd b = lu.solve(Eigen::VectorXd::Ones(Eigen::Index(m)));
    ok = true;
    for (size_t j = 0; j < m; ++j) {
      intercept[j] = b(Eigen::Index(j)) > 0 ? 1.0 / b(Eigen::Index(j)) : 0.0;
      ok = ok && intercept[j] > 1e-6 && std::isfinite(intercept[j]);
    }
  }
  if (!ok)
    for (size_t j = 0; j < m; ++j) {
      intercept[j] = 0;
      for (int i : first_front) intercept[j] = std::max(intercept[j], f[size_t(i)][j] - ideal[j]);
      if (intercept[j] <= 1e-6)
        for (int i : members) intercept[j] = std::max(intercept[j], f[size_t(i)][j] - ideal[j]);
      if (intercept[j] <= 1e-6) intercept[j] = 1.0;
    }
  Niches out{std::vector<int>(f.size(), -1), std::vector<double>(f.size(), 0.0)};
  for (int i : members) {
    Point z(m);
    for (size_t j = 0; j < m; ++j) z[j] = (f[size_t(i)][j] - ideal[j]) / intercept[j];
    double best = std::numeric_limits<double>::infinity();
    for (size_t d = 0; d < dirs.size(); ++d) {
      double dot = 0, norm2 = 0;
      for (size_t j = 0; j < m; ++j) dot += z[j] * dirs[d][j], norm2 += dirs[d][j] * dirs[d][j];
      double dist2 = 0;
      for (size_t j = 0; j < m; ++j) {
        const double e = z[j] - dot / norm2 * dirs[d][j];
        dist2 += e * e;
      }
      if (dist2 < best) best = dist2, out.niche[size_t(i)] = int(d), out.distance[size_t(i)] = std::sqrt(dist2);
    }
  }
  return out;
}

std::vector<int> iota_n(size_t n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

std::vector<int> survive_ga(const std::vector<Individual>& pool, size_t n) {
  auto order = iota_n(pool.size());
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const auto& x = pool[size_t(a)];
    const auto& y = pool[size_t(b)];
    if (x.violation != y.violation) return x.violation < y.violation;
    return x.f[0] < y.f[0];
  });
  order.resize(std::min(n, order.size()));
  return order;
}

std::vector<int> survive_nsga2(const std::vector<Individual>& pool, size_t n) {
  const auto f = objectives_of(pool);
  std::vector<int> chosen;
  for (const auto& front : non_dominated_sort(f, violations_of(pool))) {
    if (chosen.size() + front.size() <= n) {
      chosen.insert(chosen.end(), front.begin(), front.end());
      continue;
    }
    const auto cd = crowding_distance(f, front);
    auto order = iota_n(front.size());
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cd[size_t(a)] > cd[size_t(b)]; });
    for (size_t i = 0; chosen.size() < n; ++i) chosen.push_back(front[size_t(order[i])]);
    break;
  }
  return chosen;
}

std::vector<int> survive_nsga3(const std::vector<Individual>& pool, size_t n, core::Rng& rng) {
  const auto f = objectives_of(pool);
  const auto fronts = non_dominated_sort(f, violations_of(pool));
  std::vector<int> chosen, members;
  size_t last = 0;
  for (; last < fronts.size(); ++last) {
    members.insert(members.end(), fronts[last].begin(), fronts[last].end());
    if (members.size() >= n) break;
    chosen.insert(chosen.end(), fronts[last].begin(), fronts[last].end());
  }
  if (members.size() <= n) return members;
  const auto dirs = reference_directions(f[0].size(), n);
  const Niches nic = associate(f, members, fronts[0], dirs);
  std::vector<int> count(dirs.size(), 0);
  for (int i : chosen) ++count[size_t(nic.niche[size_t(i)])];
  std::vector<std::vector<int>> candidates(dirs.size());
  for (int i : fronts[last]) candidates[size_t(nic.niche[size_t(i)])].push_back(i);
  std::vector<bool> open(dirs.size());
  for (size_t d = 0; d < dirs.size(); ++d) open[d] = !candidates[d].empty();
  while (chosen.size() < n) {
    int lowest = std::numeric_limits<int>::max();
    for (size_t d = 0; d < dirs.size(); ++d)
      if (open[d]) lowest = std::min(lowest, count[d]);
    std::vector<size_t> ties;
    for (size_t d = 0; d < dirs.size(); ++d)
      if (open[d] && count[d] == lowest) ties.push_back(d);
    const size_t d = ties[size_t(core::uniform_index(rng, int64_t(ties.size())))];
    auto& cands = candidates[d];
    size_t pick = 0;
    if (count[d] == 0) {
      for (size_t k = 1; k < cands.size(); ++k)
        if (nic.distance[size_t(cands[k])] < nic.distance[size_t(cands[pick])]) pick = k;
    } else {
      pick = size_t(core::uniform_index(rng, int64_t(cands.size())));
    }
    chosen.push_back(cands[pick]);
    cands.erase(cands.begin() + long(pick));
    ++count[d];
    if (cands.empty()) open[d] = false;
  }
  return chosen;
}

}  // namespace

std::vector<int> survive(const std::vector<Individual>& pool, size_t n, Survival survival, core::Rng& rng) {
  if (pool.size() <= n) return iota_n(pool.size());
  switch (survival) {
    case Survival::kGa: return survive_ga(pool, n);
    case Survival::kNsga2: return survive_nsga2(pool, n);
    case Survival::kNsga3: return survive_nsga3(pool, n, rng);
  }
  return {};
}

// --- Breeding ----------------------------------------------------------------------

namespace {

// Binary tournament: which of two parents breeds.
class Tournament {
 public:
  Tournament(const std::vector<Individual>& parents, Survival survival) : parents_(parents), survival_(survival) {
    if (survival == Survival::kGa) return;
    const auto f = objectives_of(parents);
    ranks_ = rank_and_crowd(f, violations_of(parents));
    if (survival == Survival::kNsga3) {
      std::vector<int> first;
      for (size_t i = 0; i < parents.size(); ++i)
        if (ranks_.rank[i] == 0) first.push_back(int(i));
      niches_ = associate(f, iota_n(parents.size()), first, reference_directions(f[0].size(), parents.size()));
    }
  }

  int pick(core::Rng& rng) const {
    const int a = int(core::uniform_index(rng, int64_t(parents_.size())));
    const int b = int(core::uniform_index(rng, int64_t(parents_.size())));
    const bool coin = core::uniform01(rng) < 0.5;
    return better(a, b, coin) ? a : b;
  }

 private:
  bool better(int a, int b, bool coin) const {
    const auto& x = parents_[size_t(a)];
    const auto& y = parents_[size_t(b)];
    if (x.violation != y.violation) return x.violation < y.violation;
    switch (survival_) {
      case Survival::kGa:
        return x.f[0] != y.f[0] ? x.f[0] < y.f[0] : coin;
      case Survival::kNsga2:
        if (ranks_.rank[size_t(a)] != ranks_.rank[size_t(b)]) return ranks_.rank[size_t(a)] < ranks_.rank[size_t(b)];
        if (ranks_.crowding[size_t(a)] != ranks_.crowding[size_t(b)])
          return ranks_.crowding[size_t(a)] > ranks_.crowding[size_t(b)];
        return coin;
      case Survival::kNsga3:
        // U-NSGA-III: compete only within a niche; across niches, at random.
        if (niches_.niche[size_t(a)] != niches_.niche[size_t(b)]) return coin;
        if (ranks_.rank[size_t(a)] != ranks_.rank[size_t(b)]) return ranks_.rank[size_t(a)] < ranks_.rank[size_t(b)];
        return niches_.distance[size_t(a)] != niches_.distance[size_t(b)]
                   ? niches_.distance[size_t(a)] < niches_.distance[size_t(b)]
                   : coin;
    }
    return coin;
  }

  const std::vector<Individual>& parents_;
  Survival survival_;
  Ranks ranks_;
  Niches niches_;
};

bool admit(const Space& space, Genome g, std::vector<Genome>& out, std::unordered_set<std::string>& exclude) {
  g = space.canonical(std::move(g));
  if (!exclude.insert(genome_key(g)).second) return false;
  out.push_back(std::move(g));
  return true;
}

}  // namespace

std::vector<Genome> random_genomes(const Space& space, size_t n, core::Rng& rng,
                                   std::unordered_set<std::string>& exclude) {
  std::vector<Genome> out;
  for (size_t tries = 0; out.size() < n && tries < 100 * n + 100; ++tries) admit(space, space.random(rng), out, exclude);
  return out;
}

std::vector<Genome> make_offspring(const Space& space, const std::vector<Individual>& parents, size_t n,
                                   Survival survival, const Operators& ops, core::Rng& rng,
                                   std::unordered_set<std::string>& exclude) {
  QNAS_CHECK(!parents.empty(), "offspring need at least one parent");
  const Tournament tournament(parents, survival);
  const auto& card = space.cardinalities();
  std::vector<Genome> out;
  for (size_t tries = 0; out.size() < n && tries < 50 * n + 50; ++tries) {
    const auto& a = parents[size_t(tournament.pick(rng))].genome;
    const auto& b = parents[size_t(tournament.pick(rng))].genome;
    auto children = core::uniform01(rng) < ops.crossover_prob ? sbx(a, b, card, ops.crossover_eta, rng)
                                                                : std::make_pair(a, b);
    for (Genome* c : {&children.first, &children.second}) {
      polynomial_mutation(*c, card, ops.mutation_prob, ops.mutation_eta, rng);
      if (out.size() < n) admit(space, *c, out, exclude);
    }
  }
  // Converged parents breed only copies: top up with random genomes.
  if (out.size() < n) {
    auto extra = random_genomes(space, n - out.size(), rng, exclude);
    out.insert(out.end(), extra.begin(), extra.end());
  }
  return out;
}

std::vector<Individual> evolve(const Space& space, size_t population, int64_t max_evaluations, Survival survival,
                               const Operators& ops, const BatchObjective& objective, core::Rng& rng) {
  std::unordered_set<std::string> seen;
  std::vector<Individual> pop;
  for (auto& g : random_genomes(space, population, rng, seen)) pop.push_back({std::move(g), {}, 0});
  objective(pop);
  int64_t evaluations = int64_t(pop.size());
  while (evaluations < max_evaluations) {
    // Duplicates are eliminated against the current population (pymoo).
    std::unordered_set<std::string> exclude;
    for (const auto& ind : pop) exclude.insert(genome_key(ind.genome));
    const size_t n = size_t(std::min<int64_t>(int64_t(population), max_evaluations - evaluations));
    std::vector<Individual> kids;
    for (auto& g : make_offspring(space, pop, n, survival, ops, rng, exclude)) kids.push_back({std::move(g), {}, 0});
    if (kids.empty()) break;
    objective(kids);
    evaluations += int64_t(kids.size());
    pop.insert(pop.end(), std::make_move_iterator(kids.begin()), std::make_move_iterator(kids.end()));
    std::vector<Individual> next;
    for (int i : survive(pop, population, survival, rng)) next.push_back(std::move(pop[size_t(i)]));
    pop = std::move(next);
  }
  return pop;
}

}  // namespace qnas::search
