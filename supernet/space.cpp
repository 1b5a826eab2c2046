#include "supernet/space.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"

namespace qnas::supernet {

const Variable* SpaceDesc::find(const std::string& name) const {
  for (const auto& v : variables)
    if (v.name == name) return &v;
  return nullptr;
}

std::string SpaceDesc::structure_hash() const {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(core::fnv1a64(structure.dump())));
  return buf;
}

namespace {
double log10_choices(const Variable& v) { return std::log10(double(v.choices.size())); }

}  // namespace

double SpaceDesc::log10_size() const {
  // Group conditional variables by their controlling variable: the size is
  // the sum over the controller's values of the product of what is active.
  double total = 0;
  std::set<std::string> controllers;
  for (const auto& v : variables)
    if (!v.active_var.empty()) controllers.insert(v.active_var);
  for (const auto& v : variables) {
    if (!v.active_var.empty()) continue;
    if (!controllers.count(v.name)) {
      total += log10_choices(v);
      continue;
    }
    double sum = 0;  // sum over this controller's choices of 10^(log10 of its dependants)
    for (int value : v.choices) {
      double l = 0;
      for (const auto& d : variables)
        if (d.active_var == v.name && value >= d.active_min) l += log10_choices(d);
      sum += std::pow(10.0, l);
    }
    total += std::log10(sum);
  }
  return total;
}

namespace {
bool active_in(const std::string& var, int min, const SubnetSpec& spec) {
  if (var.empty()) return true;
  const auto it = spec.arch.find(var);
  return it != spec.arch.end() && it->second >= min;
}
}  // namespace

bool is_active(const Variable& v, const SubnetSpec& spec) { return active_in(v.active_var, v.active_min, spec); }
bool is_active(const LayerDesc& l, const SubnetSpec& spec) { return active_in(l.active_var, l.active_min, spec); }

std::vector<quant::MethodChoice> searched_methods(const core::QuantConfig& quant) {
  std::vector<quant::MethodChoice> out;
  for (size_t i = 0; i < quant.methods.size(); ++i) {
    const std::string where = "config quant.methods[" + std::to_string(i) + "] '" + quant.methods[i] + "'";
    const auto m = quant::parse_method_choice(quant.methods[i], where);
    QNAS_CHECK(!m.params.count("group"), where, ": group is not searchable (a group must divide every layer's input "
               "columns, which the architecture changes); expected per-channel methods, or qnas compress --group");
    QNAS_CHECK(std::find(out.begin(), out.end(), m) == out.end(), where, ": listed twice; expected distinct methods");
    out.push_back(m);
  }
  QNAS_CHECK(!out.empty(), "config quant.methods: empty; expected at least one method (rtn)");
  return out;
}

void check_kept_layers(const SpaceDesc& space, const std::vector<std::string>& kept) {
  std::set<std::string> seen;
  for (size_t i = 0; i < kept.size(); ++i) {
    const std::string where = "config quant.keep_8bit[" + std::to_string(i) + "] '" + kept[i] + "'";
    QNAS_CHECK(std::find(space.layers.begin(), space.layers.end(), kept[i]) != space.layers.end(), where,
               ": no such layer; expected compressible layer names such as ", space.layers.front(), ", ",
               space.layers.back());
    QNAS_CHECK(seen.insert(kept[i]).second, where, ": listed twice; expected distinct layers");
  }
}

namespace {

// The group of a layer at a granularity: the layer itself, its block or its stage.
std::string group_of(const LayerDesc& l, const std::string& granularity) {
  if (granularity == "block") return l.block;
  if (granularity == "stage") return l.stage;
  QNAS_CHECK(granularity == "layer", "config quant.granularity '", granularity, "'; expected layer, block or stage");
  return l.name;
}

// A group exists whenever one of its layers does: unconditional if one of them
// is, else from the least depth any of them needs.
void set_group_activity(Variable& v, const std::vector<const LayerDesc*>& members) {
  v.active_var = members.front()->active_var;
  v.active_min = members.front()->active_min;
  for (const auto* m : members) {
    if (m->active_var.empty() || v.active_var.empty()) {
      v.active_var.clear(), v.active_min = 0;
      continue;
    }
    QNAS_CHECK(m->active_var == v.active_var, "search space: group '", v.layer, "' holds layers of two stages (",
               m->active_var, ", ", v.active_var, ")");
    v.active_min = std::min(v.active_min, m->active_min);
  }
}

}  // namespace

void add_policy_variables(SpaceDesc& space, const core::QuantConfig& quant) {
  space.methods = searched_methods(quant);
  space.couple_act_bits = quant.couple_act_bits;
  space.layers.clear();
  for (const auto& l : space.layer_descs) space.layers.push_back(l.name);
  check_kept_layers(space, quant.keep_8bit);
  const std::set<std::string> kept(quant.keep_8bit.begin(), quant.keep_8bit.end());
  // Groups in network order of their first layer.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const LayerDesc*>> members;
  for (const auto& l : space.layer_descs) {
    const std::string g = kept.count(l.name) ? l.name : group_of(l, quant.granularity);
    if (!members.count(g)) order.push_back(g);
    members[g].push_back(&l);
  }
  std::vector<int> wbits = quant.weight_bits, abits = quant.act_bits;
  std::sort(wbits.begin(), wbits.end());
  std::sort(abits.begin(), abits.end());
  std::vector<int> method_indices(space.methods.size());
  for (size_t i = 0; i < method_indices.size(); ++i) method_indices[i] = int(i);
  for (const auto& g : order) {
    const auto& ms = members.at(g);
    const bool keep = kept.count(g) > 0;
    Variable v;
    v.layer = g;
    for (const auto* m : ms) v.layers.push_back(m->name);
    set_group_activity(v, ms);
    const auto add = [&](const char* field, std::vector<int> choices) {
      v.name = g + "." + field;
      v.field = field;
      v.choices = std::move(choices);
      space.variables.push_back(v);
    };
    add("weight_bits", keep ? std::vector<int>{8} : wbits);
    if (!quant.couple_act_bits) add("act_bits", abits);
    if (space.methods.size() > 1 && !keep) add("method", method_indices);
  }
}

const LayerDesc& layer_desc(const SpaceDesc& space, const std::string& name) {
  for (const auto& l : space.layer_descs)
    if (l.name == name) return l;
  QNAS_THROW("search space: no compressible layer '", name, "'");
}

quant::LayerPolicy policy_with_method(int weight_bits, int act_bits, const quant::MethodChoice& method) {
  quant::LayerPolicy p;
  p.weight_bits = weight_bits;
  p.act_bits = act_bits;
  if (quant::method_applies(method.method, weight_bits, act_bits)) {
    p.method = method.method;
    p.params = method.params;
  }
  return p;
}

SubnetSpec spec_from_values(const SpaceDesc& space, const std::map<std::string, int>& values) {
  SubnetSpec spec;
  spec.supernet = space.supernet;
  // Architecture first: activity of policy variables depends on it.
  for (const auto& v : space.variables) {
    if (v.is_policy() || !is_active(v, spec)) continue;
    const auto it = values.find(v.name);
    QNAS_CHECK(it != values.end(), "spec: no value for active variable '", v.name, "'");
    spec.arch[v.name] = it->second;
  }
  std::map<std::string, int> method_of;
  for (const auto& v : space.variables) {
    if (!v.is_policy() || !is_active(v, spec)) continue;
    const auto it = values.find(v.name);
    for (const auto& layer : v.layers) {
      if (!is_active(layer_desc(space, layer), spec)) continue;  // a group's layer that depth removes
      auto& p = spec.policy[layer];
      if (it == values.end()) continue;  // keep the default for this field
      if (v.field == "weight_bits") {
        p.weight_bits = it->second;
        if (space.couple_act_bits) p.act_bits = core::coupled_act_bits(p.weight_bits);
      } else if (v.field == "act_bits") p.act_bits = it->second;
      else if (v.field == "method") method_of[layer] = it->second;
    }
  }
  for (const auto& [layer, index] : method_of) {  // once the layer's bits are known
    auto& p = spec.policy.at(layer);
    p = policy_with_method(p.weight_bits, p.act_bits, space.methods.at(size_t(index)));
  }
  return spec;
}

namespace {
SubnetSpec extreme_spec(const SpaceDesc& space, const quant::LayerPolicy& policy, bool largest) {
  std::map<std::string, int> values;
  for (const auto& v : space.variables)
    values[v.name] = largest ? v.choices.back() : v.choices.front();
  return with_uniform_policy(spec_from_values(space, values), policy);
}
}  // namespace

SubnetSpec largest_spec(const SpaceDesc& space, const quant::LayerPolicy& policy) {
  return extreme_spec(space, policy, true);
}

SubnetSpec smallest_spec(const SpaceDesc& space, const quant::LayerPolicy& policy) {
  return extreme_spec(space, policy, false);
}

SubnetSpec random_spec(const SpaceDesc& space, core::Rng& rng, bool with_policy) {
  std::map<std::string, int> values;
  for (const auto& v : space.variables) {
    if (v.is_policy() && !with_policy) continue;
    values[v.name] = v.choices[size_t(core::uniform_index(rng, int64_t(v.choices.size())))];
  }
  return spec_from_values(space, values);
}

SubnetSpec with_random_policy(const SpaceDesc& space, const SubnetSpec& spec, core::Rng& rng) {
  std::map<std::string, int> values(spec.arch.begin(), spec.arch.end());
  for (const auto& v : space.variables)
    if (v.is_policy() && is_active(v, spec))
      values[v.name] = v.choices[size_t(core::uniform_index(rng, int64_t(v.choices.size())))];
  return spec_from_values(space, values);
}

SubnetSpec with_uniform_policy(SubnetSpec spec, const quant::LayerPolicy& policy) {
  for (auto& [layer, p] : spec.policy) p = policy;
  return spec;
}

void validate_spec(const SpaceDesc& space, const SubnetSpec& spec, const std::string& where) {
  QNAS_CHECK(spec.supernet == space.supernet, where, ": supernet '", spec.supernet,
             "'; expected '", space.supernet, "' (the config's supernet.kind)");
  for (const auto& [name, value] : spec.arch) {
    const Variable* v = space.find(name);
    QNAS_CHECK(v && !v->is_policy(), where, ": unknown architecture variable '", name,
               "' (run `qnas info CONFIG` to list the space)");
    QNAS_CHECK(is_active(*v, spec), where, ": '", name, "' is set, but ", v->active_var,
               " < ", v->active_min, " removes that block; expected no value");
    QNAS_CHECK(std::find(v->choices.begin(), v->choices.end(), value) != v->choices.end(), where,
               ": ", name, " = ", value, "; expected one of ", nlohmann::json(v->choices).dump());
  }
  for (const auto& v : space.variables)
    QNAS_CHECK(v.is_policy() || !is_active(v, spec) || spec.arch.count(v.name), where,
               ": missing architecture variable '", v.name, "'");
  std::set<std::string> active_layers;
  for (const auto& l : space.layer_descs)
    if (is_active(l, spec)) active_layers.insert(l.name);
  for (const auto& [layer, policy] : spec.policy) {
    QNAS_CHECK(active_layers.count(layer), where, ": policy for '", layer,
               "', which is not an active compressible layer of this subnet");
    quant::check_policy(policy, where + ": policy of '" + layer + "'");
  }
  for (const auto& layer : active_layers)
    QNAS_CHECK(spec.policy.count(layer), where, ": missing policy for active layer '", layer, "'");
}

nlohmann::json to_json(const SubnetSpec& spec) {
  nlohmann::json policy = nlohmann::json::object();
  for (const auto& [layer, p] : spec.policy) policy[layer] = p;
  return {{"supernet", spec.supernet}, {"arch", spec.arch}, {"policy", policy}};
}

SubnetSpec spec_from_json(const nlohmann::json& j, const std::string& where) {
  QNAS_CHECK(j.is_object(), where, ": expected a JSON object with supernet, arch, policy");
  SubnetSpec spec;
  for (const auto& [key, value] : j.items()) {
    if (key == "supernet") {
      QNAS_CHECK(value.is_string(), where, ".supernet: expected a string");
      spec.supernet = value.get<std::string>();
    } else if (key == "arch") {
      QNAS_CHECK(value.is_object(), where, ".arch: expected an object of integers");
      for (const auto& [name, v] : value.items()) {
        QNAS_CHECK(v.is_number_integer(), where, ".arch.", name, ": expected an integer, got ", v.dump());
        spec.arch[name] = v.get<int>();
      }
    } else if (key == "policy") {
      QNAS_CHECK(value.is_object(), where, ".policy: expected an object keyed by layer name");
      for (const auto& [layer, p] : value.items())
        spec.policy[layer] = quant::policy_from_json(p, where + ".policy." + layer);
    } else {
      QNAS_THROW(where, ": unknown key '", key, "'; expected supernet, arch, policy");
    }
  }
  QNAS_CHECK(!spec.supernet.empty(), where, ": missing key 'supernet'");
  return spec;
}

SubnetSpec load_spec(const std::string& path) {
  const std::string text = core::read_text_file(path, "subnet spec");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    QNAS_THROW("subnet spec '", path, "': not valid JSON (", e.what(), ")");
  }
  return spec_from_json(j, "subnet spec '" + path + "'");
}

nlohmann::json to_json(const SpaceDesc& space) {
  nlohmann::json vars = nlohmann::json::array();
  for (const auto& v : space.variables) {
    nlohmann::json jv = {{"name", v.name}, {"choices", v.choices}, {"field", v.field}};
    if (v.is_policy()) jv["layer"] = v.layer, jv["layers"] = v.layers;
    if (!v.active_var.empty()) jv["active_if"] = v.active_var + " >= " + std::to_string(v.active_min);
    vars.push_back(jv);
  }
  nlohmann::json methods = nlohmann::json::array();
  for (const auto& m : space.methods) methods.push_back(quant::method_choice_text(m));
  return {{"supernet", space.supernet}, {"structure", space.structure},
          {"structure_hash", space.structure_hash()}, {"layers", space.layers}, {"methods", methods},
          {"variables", vars}};
}

namespace {
void diff_into(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
               std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      const std::string sub = path + "." + k;
      if (!a.contains(k) || !b.contains(k))
        out.push_back(sub + ": checkpoint " + (a.contains(k) ? a[k].dump() : "(absent)") +
                      ", config " + (b.contains(k) ? b[k].dump() : "(absent)"));
      else
        diff_into(a[k], b[k], sub, out);
    }
  } else if (a.is_array() && b.is_array() && a.size() == b.size() && !a.empty() && a[0].is_object()) {
    for (size_t i = 0; i < a.size(); ++i) diff_into(a[i], b[i], path + "." + std::to_string(i), out);
  } else if (a != b) {
    out.push_back(path + ": checkpoint " + a.dump() + ", config " + b.dump());
  }
}
}  // namespace

std::vector<std::string> structure_diff(const nlohmann::json& checkpoint, const nlohmann::json& config) {
  std::vector<std::string> out;
  diff_into(checkpoint, config, "supernet", out);
  return out;
}

}  // namespace qnas::supernet
