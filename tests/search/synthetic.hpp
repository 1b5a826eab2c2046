#pragma once
// Synthetic spaces and objectives for search tests (no supernet needed).
#include <cmath>
#include <string>

#include "search/space.hpp"

namespace qnas::search::testing {

/// `n` architecture variables "v0".."v{n-1}", each with choices 0..k-1;
/// variables from `conditional_from` on are active only when v0 >= 1.
inline Space synthetic_space(int n, int k, int conditional_from = -1) {
  supernet::SpaceDesc d;
  d.supernet = "synthetic";
  for (int i = 0; i < n; ++i) {
    supernet::Variable v;
    v.name = "v" + std::to_string(i);
    v.field = "depth";
    for (int c = 0; c < k; ++c) v.choices.push_back(c);
    if (conditional_from >= 0 && i >= conditional_from) v.active_var = "v0", v.active_min = 1;
    d.variables.push_back(v);
  }
  return Space(d);
}

/// Thrown by a test's evaluator to stop a search as a kill would.
struct Killed {};

}  // namespace qnas::search::testing
