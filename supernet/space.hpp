#pragma once
// The supernet's search space as plain data: an ordered list of named integer
// variables with their finite choices. Architecture variables (depth, kernel,
// expand) and one policy variable pair per compressible layer. A variable
// may be conditional: it is active only when another variable (a stage's
// depth) is at least some value. Plain data, no LibTorch.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/core/config.hpp"
#include "src/core/rng.hpp"
#include "src/quant/policy.hpp"

namespace qnas::supernet {

struct Variable {
  std::string name;          // e.g. "s1.depth", "s1.b2.kernel", "s1.b2.dw.weight_bits"
  std::vector<int> choices;  // ascending
  std::string layer;         // policy variables: the layer, or group of layers (quant.granularity), they configure
  std::string field;         // depth | kernel | expand | weight_bits | act_bits | method (index into methods)
  std::string active_var;    // empty: always active
  int active_min = 0;        // active iff value(active_var) >= active_min
  std::vector<std::string> layers;  // policy variables: the compressible layers they set

  bool is_policy() const { return !layer.empty(); }
};

/// A compressible layer: its name, the groups a coarser policy granularity
/// puts it in, and when it exists (as the architecture variables' activity).
struct LayerDesc {
  std::string name;   // e.g. "s1.b2.dw"
  std::string block;  // e.g. "s1.b2", "stem", "head"
  std::string stage;  // e.g. "s1"; outside the stages, its block
  std::string active_var;
  int active_min = 0;
};

/// A subnet: architecture choices and one LayerPolicy per active compressible
/// layer. Inactive (depth-cut) blocks carry neither.
struct SubnetSpec {
  std::string supernet;
  std::map<std::string, int> arch;
  std::map<std::string, quant::LayerPolicy> policy;

  bool operator==(const SubnetSpec& o) const {
    return supernet == o.supernet && arch == o.arch && policy == o.policy;
  }
};

struct SpaceDesc {
  std::string supernet;                // "mbv3"
  std::vector<Variable> variables;     // architecture first, then policies
  std::vector<std::string> layers;     // compressible layers, network order
  std::vector<LayerDesc> layer_descs;  // the same layers, described
  nlohmann::json structure;            // everything that shapes the weights
  std::vector<quant::MethodChoice> methods{quant::MethodChoice{}};  // choices of the `method` variables
  bool couple_act_bits = false;  // quant.couple_act_bits: no act_bits variables, core::coupled_act_bits decides

  const Variable* find(const std::string& name) const;
  /// log10 of the number of distinct subnets (conditional variables counted
  /// only where active).
  double log10_size() const;
  /// Stable hash of `structure` (hex), stored in checkpoints.
  std::string structure_hash() const;
};

/// quant.methods parsed and checked (errors name the entry): no duplicates,
/// no `group` (whether a group divides a layer's columns depends on the
/// architecture, so the space could hold subnets that do not deploy).
std::vector<quant::MethodChoice> searched_methods(const core::QuantConfig& quant);

/// Every name in quant.keep_8bit is one of the space's layers (listed once).
void check_kept_layers(const SpaceDesc& space, const std::vector<std::string>& kept);

/// Appends the policy variables of `space.layer_descs` (set by the family):
/// per group of quant.granularity, in network order, `<group>.weight_bits`,
/// `<group>.act_bits` (not with quant.couple_act_bits) and, with several
/// quant.methods, `<group>.method`. A keep_8bit layer is a group of its own
/// with weight bits {8} and no method. Also fills `space.layers`,
/// `space.methods` and `space.couple_act_bits`.
void add_policy_variables(SpaceDesc& space, const core::QuantConfig& quant);

/// The layer named `name`; throws when the space has none.
const LayerDesc& layer_desc(const SpaceDesc& space, const std::string& name);

/// The policy a layer gets from its bits and its method variable's choice:
/// the method where it takes those bits (quant::method_applies), rtn otherwise.
quant::LayerPolicy policy_with_method(int weight_bits, int act_bits, const quant::MethodChoice& method);

// --- Specs over a space -----------------------------------------------------

/// Every arch variable at its largest (smallest) choice; `policy` on every layer.
SubnetSpec largest_spec(const SpaceDesc& space, const quant::LayerPolicy& policy = {});
SubnetSpec smallest_spec(const SpaceDesc& space, const quant::LayerPolicy& policy = {});

/// Uniform choice of every variable (architecture only when `with_policy` is
/// false; layers then get the default fp32 policy).
SubnetSpec random_spec(const SpaceDesc& space, core::Rng& rng, bool with_policy = true);

/// `spec`'s architecture with every active policy variable drawn uniformly
/// from its choices.
SubnetSpec with_random_policy(const SpaceDesc& space, const SubnetSpec& spec, core::Rng& rng);

/// Builds a spec from values for (at least) every active variable.
SubnetSpec spec_from_values(const SpaceDesc& space, const std::map<std::string, int>& values);

/// Replaces every layer's policy by `policy`.
SubnetSpec with_uniform_policy(SubnetSpec spec, const quant::LayerPolicy& policy);

/// Throws qnas::Error naming the variable or layer when the spec is not a
/// subnet of this space: unknown or missing variables, an architecture choice
/// outside the space, a policy outside the legal bit-widths, policies for
/// absent layers. Policies need not be among the searched choices.
void validate_spec(const SpaceDesc& space, const SubnetSpec& spec, const std::string& where);

/// True when the variable (the layer) is active in `spec`.
bool is_active(const Variable& v, const SubnetSpec& spec);
bool is_active(const LayerDesc& l, const SubnetSpec& spec);

// --- JSON ------------------------------------------------------------------

nlohmann::json to_json(const SubnetSpec& spec);
SubnetSpec spec_from_json(const nlohmann::json& j, const std::string& where);
SubnetSpec load_spec(const std::string& path);
nlohmann::json to_json(const SpaceDesc& space);

/// Human-readable differences between two structures ("supernet.kernel:
/// checkpoint [3,5,7], config [3,5]"); empty when equal.
std::vector<std::string> structure_diff(const nlohmann::json& checkpoint, const nlohmann::json& config);

}  // namespace qnas::supernet
