#include "search/baselines.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "src/core/error.hpp"

namespace qnas::search {

namespace {

const std::vector<UniformPolicy>& candidate_policies() {
  static const std::vector<UniformPolicy> p = {{"int8", 8, 8}, {"w4a8", 4, 8}, {"fp32", 32, 32}};
  return p;
}

// A layer whose weight bits have one choice (quant.keep_8bit) keeps it.
int weight_bits_for(const supernet::SpaceDesc& d, const std::string& layer, int bits) {
  for (const auto& v : d.variables)
    if (v.field == "weight_bits" && v.choices.size() == 1 &&
        std::find(v.layers.begin(), v.layers.end(), layer) != v.layers.end())
      return v.choices[0];
  return bits;
}

supernet::SubnetSpec with_policy(const Space& space, supernet::SubnetSpec spec, const UniformPolicy& u) {
  for (auto& [layer, p] : spec.policy) {
    p = quant::LayerPolicy{};
    p.weight_bits = weight_bits_for(space.desc(), layer, u.weight_bits);
    p.act_bits = u.act_bits;
  }
  return spec;
}

// The genome of `spec`, or nothing when the space cannot hold it (bits or
// plain rtn not among its choices).
std::optional<Genome> genome_of(const Space& space, const supernet::SubnetSpec& spec) {
  try {
    return space.encode(spec);
  } catch (const Error&) {
    return std::nullopt;
  }
}

bool has_policy_variables(const Space& space) {
  for (const auto& v : space.desc().variables)
    if (v.field == "weight_bits") return true;
  return false;
}

}  // namespace

std::vector<UniformPolicy> uniform_policies(const Space& space) {
  std::vector<UniformPolicy> out;
  if (!has_policy_variables(space)) return out;
  const auto largest = supernet::largest_spec(space.desc());
  for (const auto& u : candidate_policies())
    if (genome_of(space, with_policy(space, largest, u))) out.push_back(u);
  return out;
}

std::vector<Genome> baseline_genomes(const Space& space, size_t random_archs, core::Rng& rng,
                                     std::unordered_set<std::string>& exclude) {
  const auto policies = uniform_policies(space);
  std::vector<Genome> out;
  if (policies.empty()) return out;
  const auto admit = [&](const supernet::SubnetSpec& arch, const UniformPolicy& u) {
    const auto g = genome_of(space, with_policy(space, arch, u));
    QNAS_CHECK(g, "baselines: the ", u.name, " policy encodes on the largest subnet but not on another");
    if (exclude.insert(genome_key(*g)).second) out.push_back(*g);
  };
  for (const auto& arch : {supernet::largest_spec(space.desc()), supernet::smallest_spec(space.desc())})
    for (const auto& u : policies) admit(arch, u);
  for (size_t i = 0; i < random_archs; ++i)
    admit(supernet::random_spec(space.desc(), rng, /*with_policy=*/false), policies[i % policies.size()]);
  return out;
}

namespace {

// What labelling a genome needs, computed once per space.
struct Labeller {
  const Space& space;
  std::vector<UniformPolicy> policies = uniform_policies(space);
  std::map<std::string, int> largest = supernet::largest_spec(space.desc()).arch;
  std::map<std::string, int> smallest = supernet::smallest_spec(space.desc()).arch;

  std::string operator()(const Genome& genome) const {
    const auto spec = space.decode(genome);
    for (const auto& u : policies) {
      if (!(with_policy(space, spec, u) == spec)) continue;
      return u.name + (spec.arch == largest ? " largest" : spec.arch == smallest ? " smallest" : " random");
    }
    return "";
  }
};

}  // namespace

std::string baseline_label(const Space& space, const Genome& genome) { return Labeller{space}(genome); }

std::vector<BaselineComparison> compare_baselines(const Space& space, const Goals& goals,
                                                  const std::vector<Genome>& genomes,
                                                  const std::vector<int>& iterations,
                                                  const std::vector<MetricValues>& metrics) {
  const Labeller label{space};
  std::vector<BaselineComparison> out;
  for (size_t i = 0; i < genomes.size(); ++i) {
    if (iterations[i] != 0) continue;
    BaselineComparison b;
    b.label = label(genomes[i]);
    if (b.label.empty()) continue;
    b.row = int(i);
    const Point base = goals.to_min(metrics[i]);
    std::vector<double> best(goals.objectives.size(), INFINITY);
    std::vector<int> best_row(goals.objectives.size(), -1);
    for (size_t j = 0; j < genomes.size(); ++j) {
      if (goals.violation(metrics[j]) > 0) continue;
      const Point p = goals.to_min(metrics[j]);
      if (dominates(p, base)) ++b.dominated_by;
      bool no_loss = true;
      for (size_t k = 0; k < p.size(); ++k) no_loss = no_loss && (!goals.objectives[k].maximize || p[k] <= base[k]);
      if (!no_loss) continue;
      ++b.no_loss_rows;
      for (size_t k = 0; k < p.size(); ++k)
        if (p[k] < best[k]) best[k] = p[k], best_row[k] = int(j);
    }
    b.on_front = goals.violation(metrics[i]) <= 0 && b.dominated_by == 0;
    for (size_t k = 0; k < goals.objectives.size(); ++k) {
      if (goals.objectives[k].maximize) continue;
      b.ratio_names.push_back(goals.objectives[k].name);
      b.ratios.push_back(best_row[k] >= 0 && best[k] > 0 ? base[k] / best[k] : NAN);
      b.ratio_rows.push_back(best_row[k]);
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace qnas::search
