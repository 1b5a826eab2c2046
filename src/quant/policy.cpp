#include "src/quant/policy.hpp"

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>

#include "src/core/error.hpp"

namespace qnas::quant {

namespace {
template <size_t N>
bool contains(const int (&set)[N], int v) {
  return std::find(std::begin(set), std::end(set), v) != std::end(set);
}
template <size_t N>
std::string set_text(const int (&set)[N]) {
  std::string s = "{";
  for (size_t i = 0; i < N; ++i) s += (i ? ", " : "") + std::to_string(set[i]);
  return s + "}";
}
}  // namespace

std::string policy_label(const LayerPolicy& p) {
  std::string s = "w" + std::to_string(p.weight_bits) + "a" + std::to_string(p.act_bits);
  if (p.method != "rtn") s += ":" + p.method;
  return s;
}

void check_policy(const LayerPolicy& p, const std::string& where) {
  QNAS_CHECK(contains(kLegalWeightBits, p.weight_bits), where, ": weight_bits ", p.weight_bits,
             "; expected one of ", set_text(kLegalWeightBits));
  QNAS_CHECK(contains(kLegalActBits, p.act_bits), where, ": act_bits ", p.act_bits,
             "; expected one of ", set_text(kLegalActBits));
  QNAS_CHECK(p.method == "rtn", where, ": method '", p.method, "'; expected 'rtn'");
}

void to_json(nlohmann::json& j, const LayerPolicy& p) {
  j = nlohmann::json{{"weight_bits", p.weight_bits}, {"act_bits", p.act_bits}, {"method", p.method}};
  if (!p.params.empty()) j["params"] = p.params;
}

LayerPolicy policy_from_json(const nlohmann::json& j, const std::string& where) {
  QNAS_CHECK(j.is_object(), where, ": expected an object like {\"weight_bits\": 8, \"act_bits\": 8}");
  LayerPolicy p;
  for (const auto& [key, value] : j.items()) {
    if (key == "weight_bits" || key == "act_bits") {
      QNAS_CHECK(value.is_number_integer(), where, ".", key, ": expected an integer, got ", value.dump());
      (key == "weight_bits" ? p.weight_bits : p.act_bits) = value.get<int>();
    } else if (key == "method") {
      QNAS_CHECK(value.is_string(), where, ".method: expected a string, got ", value.dump());
      p.method = value.get<std::string>();
    } else if (key == "params") {
      QNAS_CHECK(value.is_object(), where, ".params: expected an object of numbers");
      for (const auto& [k, v] : value.items()) {
        QNAS_CHECK(v.is_number(), where, ".params.", k, ": expected a number, got ", v.dump());
        p.params[k] = v.get<double>();
      }
    } else {
      QNAS_THROW(where, ": unknown key '", key, "'; expected weight_bits, act_bits, method, params");
    }
  }
  check_policy(p, where);
  return p;
}

}  // namespace qnas::quant
