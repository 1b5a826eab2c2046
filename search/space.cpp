#include "search/space.hpp"

#include <algorithm>
#include <map>

#include "src/core/error.hpp"

namespace qnas::search {

Space::Space(supernet::SpaceDesc desc) : desc_(std::move(desc)) {
  QNAS_CHECK(!desc_.variables.empty(), "search space of '", desc_.supernet, "' has no variables");
  for (const auto& v : desc_.variables) {
    QNAS_CHECK(!v.choices.empty(), "search space: variable '", v.name, "' has no choices");
    cardinalities_.push_back(int(v.choices.size()));
    int ctrl = -1;
    if (!v.active_var.empty()) {
      for (size_t i = 0; i < desc_.variables.size(); ++i)
        if (desc_.variables[i].name == v.active_var) ctrl = int(i);
      QNAS_CHECK(ctrl >= 0, "search space: '", v.name, "' depends on unknown variable '", v.active_var, "'");
    }
    controller_.push_back(ctrl);
  }
}

void Space::check_range(const Genome& g) const {
  QNAS_CHECK(g.size() == variables(), "genome of ", g.size(), " genes; the space has ", variables(), " variables");
  for (size_t i = 0; i < g.size(); ++i)
    QNAS_CHECK(g[i] >= 0 && g[i] < cardinalities_[i], "genome: gene '", desc_.variables[i].name, "' = ", g[i],
               "; expected a choice index 0..", cardinalities_[i] - 1);
}

bool Space::is_active(const Genome& g, size_t i) const {
  const int c = controller_[i];
  if (c < 0) return true;
  return desc_.variables[size_t(c)].choices[size_t(g[size_t(c)])] >= desc_.variables[i].active_min;
}

Genome Space::canonical(Genome g) const {
  check_range(g);
  for (size_t i = 0; i < g.size(); ++i)
    if (!is_active(g, i)) g[i] = 0;
  return g;
}

predictors::Genome Space::masked(const Genome& g) const {
  predictors::Genome out(g.begin(), g.end());
  for (size_t i = 0; i < g.size(); ++i)
    if (!is_active(g, i)) out[i] = predictors::kInactive;
  return out;
}

Genome Space::random(core::Rng& rng) const {
  Genome g(variables());
  for (size_t i = 0; i < g.size(); ++i) g[i] = int(core::uniform_index(rng, cardinalities_[i]));
  return canonical(std::move(g));
}

supernet::SubnetSpec Space::decode(const Genome& genome) const {
  check_range(genome);
  std::map<std::string, int> values;
  for (size_t i = 0; i < genome.size(); ++i)
    values[desc_.variables[i].name] = desc_.variables[i].choices[size_t(genome[i])];
  return supernet::spec_from_values(desc_, values);
}

namespace {

int value_in_spec(const supernet::Variable& v, const supernet::SubnetSpec& spec) {
  if (!v.is_policy()) return spec.arch.at(v.name);
  const auto& p = spec.policy.at(v.layer);
  if (v.field == "weight_bits") return p.weight_bits;
  if (v.field == "act_bits") return p.act_bits;
  QNAS_THROW("search space: policy field '", v.field, "' of '", v.name, "' cannot be encoded");
}

}  // namespace

Genome Space::encode(const supernet::SubnetSpec& spec) const {
  supernet::validate_spec(desc_, spec, "spec");
  Genome g(variables(), 0);
  for (size_t i = 0; i < g.size(); ++i) {
    const auto& v = desc_.variables[i];
    if (!supernet::is_active(v, spec)) continue;
    const int value = value_in_spec(v, spec);
    const auto it = std::find(v.choices.begin(), v.choices.end(), value);
    QNAS_CHECK(it != v.choices.end(), "spec: ", v.name, " = ", value, " is not a searched choice; expected one of ",
               nlohmann::json(v.choices).dump());
    g[i] = int(it - v.choices.begin());
  }
  // Anything the genes cannot carry (another method, method parameters)
  // would be lost silently: refuse it instead.
  QNAS_CHECK(decode(g) == spec, "spec: its policy holds fields the search space does not vary (method or its "
             "parameters); expected the space's default method on every layer");
  return g;
}

std::string Space::weight_bits_summary(const Genome& g) const {
  std::map<int, int> bits;  // weight bits -> active layers
  for (size_t i = 0; i < g.size(); ++i) {
    const auto& v = desc_.variables[i];
    if (is_active(g, i) && v.field == "weight_bits") ++bits[v.choices[size_t(g[i])]];
  }
  std::string out;
  for (const auto& [b, n] : bits) out += (out.empty() ? "w" : " w") + std::to_string(b) + "x" + std::to_string(n);
  return out;
}

std::string genome_key(const Genome& genome) {
  std::string key;
  for (int x : genome) key += std::to_string(x) + ",";
  return key;
}

}  // namespace qnas::search
