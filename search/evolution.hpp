#pragma once
// Evolutionary machinery shared by the nsga2 and ga tactics (on validated
// candidates) and LINAS's inner search (on predictions), with DyNAS-T's
// operators: integer random sampling, SBX crossover and polynomial mutation
// on choice indices with rounding repair, duplicate elimination.
//
// Survival:
//   kGa     single objective: constraint violation, then the objective;
//   kNsga2  Deb et al. 2002: constrained non-dominated fronts, the last one
//           cut by crowding distance; binary tournament on (rank, crowding);
//   kNsga3  Deb & Jain 2014 reference-direction niching (Das-Dennis
//           directions, ideal point / hyperplane-intercept normalisation)
//           with U-NSGA-III's niche-based tournament (Seada & Deb 2016), as
//           DyNAS-T's LINAS uses for 3 objectives.

#include <functional>
#include <unordered_set>
#include <vector>

#include "search/pareto.hpp"
#include "search/space.hpp"
#include "src/core/config.hpp"
#include "src/core/rng.hpp"

namespace qnas::search {

struct Individual {
  Genome genome;
  Point f;               // minimisation objectives
  double violation = 0;  // 0 = feasible
};

struct Operators {
  double crossover_prob = 0.9, crossover_eta = 15;
  double mutation_prob = 0.02, mutation_eta = 20;
  static Operators from_config(const core::SearchConfig& cfg);
};

enum class Survival { kGa, kNsga2, kNsga3 };

/// SBX on every gene (probability 0.5 each, as pymoo), rounded to indices.
std::pair<Genome, Genome> sbx(const Genome& a, const Genome& b, const std::vector<int>& cardinalities, double eta,
                              core::Rng& rng);
/// Polynomial mutation of each gene with probability `prob`, rounded.
void polynomial_mutation(Genome& g, const std::vector<int>& cardinalities, double prob, double eta, core::Rng& rng);

/// Das-Dennis reference directions on the unit simplex in `m` dimensions,
/// with the most partitions that give at most `max_count` directions.
std::vector<Point> reference_directions(size_t m, size_t max_count);

/// Indices of the `n` survivors of `pool`.
std::vector<int> survive(const std::vector<Individual>& pool, size_t n, Survival survival, core::Rng& rng);

/// `n` new canonical genomes, none in `exclude` nor repeated (they are added
/// to `exclude`), bred from `parents` by tournament, SBX and mutation. Falls
/// back to random genomes when breeding keeps producing duplicates; may
/// return fewer when the space is exhausted.
std::vector<Genome> make_offspring(const Space& space, const std::vector<Individual>& parents, size_t n,
                                   Survival survival, const Operators& ops, core::Rng& rng,
                                   std::unordered_set<std::string>& exclude);

/// `n` distinct random canonical genomes not in `exclude` (added to it).
std::vector<Genome> random_genomes(const Space& space, size_t n, core::Rng& rng,
                                   std::unordered_set<std::string>& exclude);

/// Fills f and violation of each individual (a batch at a time).
using BatchObjective = std::function<void(std::vector<Individual>&)>;

/// A whole evolutionary run on a cheap objective: random initial population
/// of `population`, then generations of `population` offspring until
/// `max_evaluations` individuals were evaluated. Returns the final population.
std::vector<Individual> evolve(const Space& space, size_t population, int64_t max_evaluations, Survival survival,
                               const Operators& ops, const BatchObjective& objective, core::Rng& rng);

}  // namespace qnas::search
