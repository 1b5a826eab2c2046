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
  bits_of_.assign(desc_.variables.size(), {-1, -1});
  for (size_t i = 0; i < desc_.variables.size(); ++i) {
    if (desc_.variables[i].field != "method") continue;
    for (size_t j = 0; j < desc_.variables.size(); ++j) {
      if (desc_.variables[j].layer != desc_.variables[i].layer) continue;
      if (desc_.variables[j].field == "weight_bits") bits_of_[i].first = int(j);
      if (desc_.variables[j].field == "act_bits") bits_of_[i].second = int(j);
    }
    QNAS_CHECK(bits_of_[i].first >= 0 && (bits_of_[i].second >= 0 || desc_.couple_act_bits),
               "search space: method variable '", desc_.variables[i].name,
               "' has no weight_bits and act_bits variables beside it");
  }
}

int Space::canonical_method(const Genome& g, size_t i, int choice) const {
  const auto value = [&](int var) { return desc_.variables[size_t(var)].choices[size_t(g[size_t(var)])]; };
  const int w = value(bits_of_[i].first);
  const int a = desc_.couple_act_bits ? core::coupled_act_bits(w) : value(bits_of_[i].second);
  const auto policy = supernet::policy_with_method(w, a, desc_.methods.at(size_t(choice)));
  for (int j = 0; j < choice; ++j)
    if (supernet::policy_with_method(w, a, desc_.methods.at(size_t(j))) == policy) return j;
  return choice;
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
  for (size_t i = 0; i < g.size(); ++i) {
    if (!is_active(g, i)) g[i] = 0;
    else if (desc_.variables[i].field == "method") g[i] = canonical_method(g, i, g[i]);
  }
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

// The smallest method choice that gives the layer's policy.
int method_in_spec(const supernet::SpaceDesc& space, const supernet::Variable& v, const quant::LayerPolicy& p) {
  std::string expected;
  for (size_t i = 0; i < space.methods.size(); ++i) {
    if (supernet::policy_with_method(p.weight_bits, p.act_bits, space.methods[i]) == p) return int(i);
    expected += (i ? ", '" : "'") + quant::method_choice_text(space.methods[i]) + "'";
  }
  QNAS_THROW("spec: ", v.layer, " uses method '", quant::method_choice_text({p.method, p.params}),
             "', which is not a searched choice at w", p.weight_bits, "a", p.act_bits, "; expected one of ", expected,
             " (config quant.methods)");
}

int field_value(const supernet::SpaceDesc& space, const supernet::Variable& v, const quant::LayerPolicy& p) {
  if (v.field == "weight_bits") return p.weight_bits;
  if (v.field == "act_bits") return p.act_bits;
  if (v.field == "method") return method_in_spec(space, v, p);
  QNAS_THROW("search space: policy field '", v.field, "' of '", v.name, "' cannot be encoded");
}

// A policy variable's value: the one its active layers share.
int value_in_spec(const supernet::SpaceDesc& space, const supernet::Variable& v, const supernet::SubnetSpec& spec) {
  if (!v.is_policy()) return spec.arch.at(v.name);
  std::string first;
  int value = 0;
  for (const auto& layer : v.layers) {
    const auto it = spec.policy.find(layer);
    if (it == spec.policy.end()) continue;  // removed by depth
    const int x = field_value(space, v, it->second);
    if (first.empty()) first = layer, value = x;
    QNAS_CHECK(x == value, "spec: layers '", first, "' and '", layer, "' differ in ", v.field, " (", value, " vs ", x,
               "), but quant.granularity gives '", v.layer, "' one ", v.field, " gene; expected one value per group "
               "(or quant.granularity: layer)");
  }
  QNAS_CHECK(!first.empty(), "spec: no active layer of group '", v.layer, "'");
  return value;
}

}  // namespace

Genome Space::encode(const supernet::SubnetSpec& spec) const {
  supernet::validate_spec(desc_, spec, "spec");
  if (desc_.couple_act_bits) check_coupled(spec);
  Genome g(variables(), 0);
  for (size_t i = 0; i < g.size(); ++i) {
    const auto& v = desc_.variables[i];
    if (!supernet::is_active(v, spec)) continue;
    const int value = value_in_spec(desc_, v, spec);
    const auto it = std::find(v.choices.begin(), v.choices.end(), value);
    QNAS_CHECK(it != v.choices.end(), "spec: ", v.name, " = ", value, " is not a searched choice; expected one of ",
               nlohmann::json(v.choices).dump());
    g[i] = int(it - v.choices.begin());
  }
  // Anything the genes cannot carry (another method, method parameters)
  // would be lost silently: refuse it instead.
  QNAS_CHECK(decode(g) == spec, "spec: its policy holds a method or parameters the search space does not vary; "
             "expected the methods of config quant.methods (", desc_.methods.size(), " listed)");
  return g;
}

void Space::check_coupled(const supernet::SubnetSpec& spec) const {
  for (const auto& [layer, p] : spec.policy)
    QNAS_CHECK(p.act_bits == core::coupled_act_bits(p.weight_bits), "spec: ", layer, " runs w", p.weight_bits, "a",
               p.act_bits, ", but quant.couple_act_bits gives a layer with ", p.weight_bits,
               "-bit weights ", core::coupled_act_bits(p.weight_bits), "-bit activations; expected w", p.weight_bits,
               "a", core::coupled_act_bits(p.weight_bits), " (or quant.couple_act_bits: false)");
}

std::string Space::weight_bits_summary(const Genome& g) const {
  std::map<int, int> bits;  // weight bits -> active layers
  for (const auto& [layer, p] : decode(g).policy) ++bits[p.weight_bits];
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
