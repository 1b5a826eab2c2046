#pragma once
// The search space as integer vectors: one gene per variable of the
// supernet's SpaceDesc (architecture first, then per-layer policies), each
// gene the index of a choice. Genes of variables a subnet does not use (the
// policy and shape of a block that depth removes) are canonicalised to 0, and
// a method gene whose method does not take its layer's bits (which then runs
// rtn) to the smallest choice meaning the same, so one network has exactly
// one genome; encode() and decode() are inverses.

#include <cstdint>
#include <string>
#include <vector>

#include "predictors/features.hpp"
#include "src/core/rng.hpp"
#include "supernet/space.hpp"

namespace qnas::search {

using Genome = std::vector<int>;

class Space {
 public:
  explicit Space(supernet::SpaceDesc desc);

  const supernet::SpaceDesc& desc() const { return desc_; }
  size_t variables() const { return desc_.variables.size(); }
  /// Number of choices of each variable.
  const std::vector<int>& cardinalities() const { return cardinalities_; }

  /// Throws when the spec is not a subnet of this space or uses a policy
  /// outside the searched choices (naming the variable).
  Genome encode(const supernet::SubnetSpec& spec) const;
  /// Accepts any in-range genome; inactive genes are ignored.
  supernet::SubnetSpec decode(const Genome& genome) const;

  bool is_active(const Genome& genome, size_t variable) const;
  /// Inactive genes set to 0.
  Genome canonical(Genome genome) const;
  /// Inactive genes set to predictors::kInactive (for one-hot features).
  predictors::Genome masked(const Genome& genome) const;
  /// Uniform choice per gene, canonicalised.
  Genome random(core::Rng& rng) const;

  /// Active layers per weight bit-width, "w4x3 w8x9 w32x5", for tables.
  std::string weight_bits_summary(const Genome& genome) const;

 private:
  void check_range(const Genome& genome) const;
  // quant.couple_act_bits: every layer's activation bits follow its weights.
  void check_coupled(const supernet::SubnetSpec& spec) const;
  // The smallest choice of method variable i that gives the same policy as
  // `choice` at the layer's bits in `genome`.
  int canonical_method(const Genome& genome, size_t i, int choice) const;

  supernet::SpaceDesc desc_;
  std::vector<int> cardinalities_;
  std::vector<int> controller_;  // index of the variable that activates each one (-1: always)
  std::vector<std::pair<int, int>> bits_of_;  // method variables: their layer's weight_bits, act_bits variables
};

/// Stable text key of a genome (for duplicate sets and JSON).
std::string genome_key(const Genome& genome);

}  // namespace qnas::search
