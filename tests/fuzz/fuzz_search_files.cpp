// libFuzzer target: the files `qnas search --resume`, `qnas pareto` and
// `qnas predict` read. The input is read as a CSV (evaluations.csv when its
// header is one: every row's cells and spec_json, and the one-hot features
// of the specs, as predict builds them; any other CSV: every cell as a
// number and as a whole number) and as state.json. Every outcome but a
// qnas::Error is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "search/results.hpp"
#include "search/state.hpp"
#include "src/core/error.hpp"

namespace {

using namespace qnas;

void read_as_csv(const std::string& text) {
  bool incomplete = false;
  const auto table = search::parse_csv(text, "fuzz.csv", &incomplete);
  if (table.header == search::evaluation_header()) {
    std::vector<std::string> specs;
    for (const auto& row : search::read_rows(table)) specs.push_back(row.spec_json);
    search::spec_features(specs, "fuzz.csv");
    return;
  }
  for (size_t r = 0; r < table.rows.size(); ++r)
    for (const auto& column : table.header) {
      try {
        table.number(r, column);
        table.integer(r, column);
      } catch (const Error&) {
      }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    read_as_csv(text);
  } catch (const Error&) {
  }
  try {
    search::parse_state(text, "fuzz/state.json");
  } catch (const Error&) {
  }
  return 0;
}
