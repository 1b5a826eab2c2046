#pragma once
// state.json: where a search stands, so --resume continues it exactly
// (DESIGN.md): the iteration, the batch proposed for it (empty between
// iterations), the hypervolume reference point and the fingerprint of the
// config it ran under. No LibTorch here: tests/fuzz reads it alone.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "search/pareto.hpp"

namespace qnas::search {

struct SearchState {
  int iteration = 0;
  std::vector<std::vector<int>> batch;  // genomes proposed for `iteration`
  std::optional<Point> reference;
  std::string fingerprint;
};

/// state.json's document; `validated` and `population_ids` are for people
/// and reports (resume recomputes them from evaluations.csv).
nlohmann::json state_json(const SearchState& s, const std::string& tactic, size_t validated,
                          const std::vector<int>& population_ids);

/// Reads state.json's text; throws qnas::Error naming `path` and the field
/// unless it is a version-1 state with every field of its type and in range
/// (genes are checked against the space by the caller).
SearchState parse_state(const std::string& text, const std::string& path);

/// parse_state() of the file at `path`.
SearchState load_state(const std::string& path);

}  // namespace qnas::search
