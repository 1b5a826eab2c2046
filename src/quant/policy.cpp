#include "src/quant/policy.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <sstream>
#include <vector>
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

const std::vector<MethodTraits>& method_table() {
  // name, parameters (a typo'd key is an error, not a default), max weight
  // bits, W8A8 only, Hessian, free offsets, factorizes, smooths inputs, tunes
  // blocks, fits outputs
  static const std::vector<MethodTraits> table = {
      {"rtn", {"group", "sym", "per_tensor", "dynamic"}, 32, false, false, false, false, false, false, false},
      {"gptq", {"group", "sym", "per_tensor", "act_order", "damp"}, 8, false, true, false, false, false, false, true},
      {"decoupleq", {"group", "iterations", "tune_steps", "tune_lr"}, 8, false, true, true, false, false, true, true},
      {"smoothquant", {"alpha", "per_tensor"}, 32, true, false, false, false, true, false, false},
      {"admm_cp", {"rank_rate"}, 8, false, false, false, true, false, false, true},
      {"cp_rtn", {"rank_rate"}, 8, false, false, false, true, false, false, true},
  };
  return table;
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& m : method_table()) out.push_back(m.name);
    return out;
  }();
  return names;
}

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

bool is_flag(double v) { return v == 0 || v == 1; }

}  // namespace

namespace {

const MethodTraits* find_method(const std::string& method) {
  for (const auto& m : method_table())
    if (m.name == method) return &m;
  return nullptr;
}

void check_method(const std::string& method, const std::map<std::string, double>& params, const std::string& where) {
  const MethodTraits* known = find_method(method);
  QNAS_CHECK(known, where, ": method '", method, "'; expected one of ", joined(method_names()));
  QNAS_CHECK(!(params.count("per_tensor") && params.at("per_tensor") == 1 && params.count("group") &&
               params.at("group") > 0),
             where, ": per_tensor 1 with group ", params.count("group") ? params.at("group") : 0.0,
             "; expected one granularity: per tensor, per channel or per group");
  for (const auto& [key, value] : params) {
    const auto& keys = known->params;
    QNAS_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(), where, ": method ", method,
               " has no parameter '", key, "'; expected ", keys.empty() ? "none" : joined(keys));
    if (key == "group")
      QNAS_CHECK(value >= 0 && value == std::floor(value), where, ": group ", value,
                 "; expected a whole number of input columns per group (0: one group per output channel)");
    if (key == "sym" || key == "act_order" || key == "per_tensor" || key == "dynamic")
      QNAS_CHECK(is_flag(value), where, ": ", key, " ", value, "; expected 0 or 1");
    if (key == "damp") QNAS_CHECK(value > 0 && value < 1, where, ": damp ", value, "; expected (0, 1)");
    if (key == "iterations")
      QNAS_CHECK(value >= 1 && value <= 100 && value == std::floor(value), where, ": iterations ", value,
                 "; expected a whole number 1..100");
    if (key == "alpha") QNAS_CHECK(value >= 0 && value <= 1, where, ": alpha ", value, "; expected a value in [0, 1]");
    if (key == "tune_steps")
      QNAS_CHECK(value >= 0 && value <= 100000 && value == std::floor(value), where, ": tune_steps ", value,
                 "; expected a whole number 0..100000");
    if (key == "rank_rate")
      QNAS_CHECK(value >= 1 && value <= 1000, where, ": rank_rate ", value,
                 "; expected a reduction rate in [1, 1000] (rank = numel / sum of dims / rate)");
    if (key == "tune_lr") QNAS_CHECK(value > 0 && value < 1, where, ": tune_lr ", value, "; expected (0, 1)");
  }
}

}  // namespace

const MethodTraits& method_traits(const std::string& method) {
  const MethodTraits* m = find_method(method);
  QNAS_CHECK(m, "method '", method, "'; expected one of ", joined(method_names()));
  return *m;
}

bool method_applies(const std::string& method, int weight_bits, int act_bits) {
  const auto& m = method_traits(method);
  return weight_bits <= m.max_weight_bits && (!m.w8a8_only || (weight_bits == 8 && act_bits == 8));
}

void check_policy(const LayerPolicy& p, const std::string& where) {
  QNAS_CHECK(contains(kLegalWeightBits, p.weight_bits), where, ": weight_bits ", p.weight_bits,
             "; expected one of ", set_text(kLegalWeightBits));
  QNAS_CHECK(contains(kLegalActBits, p.act_bits), where, ": act_bits ", p.act_bits,
             "; expected one of ", set_text(kLegalActBits));
  check_method(p.method, p.params, where);
  const auto& m = method_traits(p.method);
  QNAS_CHECK(p.weight_bits <= m.max_weight_bits, where, ": method ", p.method, " quantizes weights; expected "
             "weight_bits <= ", m.max_weight_bits, ", got ", p.weight_bits);
  if (p.param("dynamic", 0) == 1)
    QNAS_CHECK(p.act_bits == 8 && p.weight_bits <= 8 && !p.general_grid(), where,
               ": dynamic activation quantization runs on int8 kernels; expected act_bits 8 and symmetric "
               "weights <= 8 bits, got ", p.weight_bits, "/", p.act_bits);
  if (m.w8a8_only)
    QNAS_CHECK(method_applies(p.method, p.weight_bits, p.act_bits), where, ": ", p.method, " is W8A8; expected "
               "weight_bits 8 and act_bits 8, got ", p.weight_bits, "/", p.act_bits);
}

MethodChoice parse_method_choice(const std::string& text, const std::string& where) {
  std::istringstream in(text);
  MethodChoice m;
  QNAS_CHECK(bool(in >> m.method), where, ": empty method; expected 'name key=value ...' such as 'gptq act_order=1'");
  for (std::string token; in >> token;) {
    const auto eq = token.find('=');
    QNAS_CHECK(eq != std::string::npos && eq > 0, where, ": '", token, "' in '", text,
               "'; expected key=value after the method name");
    const std::string key = token.substr(0, eq), value = token.substr(eq + 1);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    QNAS_CHECK(used == value.size() && !value.empty(), where, ": ", key, "=", value, "; expected a number");
    QNAS_CHECK(!m.params.count(key), where, ": parameter '", key, "' twice in '", text, "'");
    m.params[key] = v;
  }
  check_method(m.method, m.params, where);
  return m;
}

std::string method_choice_text(const MethodChoice& m) {
  std::ostringstream out;
  out << m.method;
  for (const auto& [key, value] : m.params) out << ' ' << key << '=' << value;
  return out.str();
}

int64_t cp_rank(int64_t i, int64_t j, int64_t k, double reduction_rate) {
  QNAS_CHECK(reduction_rate > 0, "cp: reduction rate ", reduction_rate, "; expected a positive number");
  return std::max<int64_t>(1, int64_t(std::floor(double(i * j * k) / double(i + j + k) / reduction_rate)));
}

int64_t cp_rank_of(const LayerPolicy& p, int64_t i, int64_t j, int64_t k) {
  return cp_rank(i, j, k, p.param("rank_rate", kDefaultRankRate));
}

double LayerPolicy::param(const std::string& key, double fallback) const {
  const auto it = params.find(key);
  return it == params.end() ? fallback : it->second;
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
