// libFuzzer target: a subnet spec JSON (`qnas eval --subnet SPEC.json`, the
// spec_json column of evaluations.csv): parsed, read as a spec, checked
// against a small two-stage space with every policy variable, and written
// back. Every outcome but a qnas::Error or a JSON parse error is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "src/core/error.hpp"
#include "supernet/space.hpp"

namespace {

using namespace qnas;

// Stage s0 always has block b0; block b1 exists when s0.depth >= 2.
supernet::SpaceDesc small_space() {
  supernet::SpaceDesc space;
  space.supernet = "mbv3";
  space.variables.push_back({"s0.depth", {1, 2}, "", "depth"});
  space.variables.push_back({"s0.b0.kernel", {3, 5}, "", "kernel"});
  supernet::Variable k1{"s0.b1.kernel", {3, 5}, "", "kernel", "s0.depth", 2};
  space.variables.push_back(k1);
  space.layer_descs = {{"stem", "stem", "stem"}, {"s0.b0.pw", "s0.b0", "s0"}, {"s0.b1.pw", "s0.b1", "s0", "s0.depth", 2},
                       {"classifier", "head", "head"}};
  core::QuantConfig quant;
  quant.weight_bits = {2, 4, 8, 32};
  quant.act_bits = {8, 32};
  quant.granularity = "layer";
  supernet::add_policy_variables(space, quant);
  return space;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const supernet::SpaceDesc space = small_space();
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const auto spec = supernet::spec_from_json(j, "fuzz.json");
    supernet::validate_spec(space, spec, "fuzz.json");
    const auto again = supernet::spec_from_json(supernet::to_json(spec), "round trip");
    if (!(again == spec)) __builtin_trap();  // a valid spec survives its own JSON
  } catch (const Error&) {
  }
  return 0;
}
