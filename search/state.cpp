#include "search/state.hpp"

#include <cmath>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"

namespace qnas::search {

namespace {

using nlohmann::json;
constexpr int64_t kMaxInt = 1'000'000'000;

const json& field(const json& j, const char* key, const std::string& path) {
  QNAS_CHECK(j.contains(key), path, ": no '", key, "'; expected a qnas search state");
  return j[key];
}

int whole(const json& v, const std::string& what, const std::string& path) {
  QNAS_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxInt, path, ": ", what, " = ",
             v.dump().substr(0, 40), "; expected a whole number in [0, ", kMaxInt, "]");
  return int(v.get<int64_t>());
}

}  // namespace

json state_json(const SearchState& s, const std::string& tactic, size_t validated, const std::vector<int>& pop) {
  json j = {{"version", 1},        {"fingerprint", s.fingerprint}, {"tactic", tactic},
            {"iteration", s.iteration}, {"validated", validated},  {"batch", s.batch},
            {"population_ids", pop}};
  j["reference_point"] = s.reference ? json(*s.reference) : json(nullptr);
  return j;
}

SearchState parse_state(const std::string& text, const std::string& path) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  QNAS_CHECK(!j.is_discarded() && j.is_object(), path, ": not a JSON object; expected a qnas search state");
  const auto& version = field(j, "version", path);
  QNAS_CHECK(version == 1, path, ": state version ", version.dump().substr(0, 40), "; expected 1");
  SearchState s;
  s.iteration = whole(field(j, "iteration", path), "iteration", path);
  const auto& fingerprint = field(j, "fingerprint", path);
  QNAS_CHECK(fingerprint.is_string(), path, ": fingerprint is a JSON ", fingerprint.type_name(), "; expected a string");
  s.fingerprint = fingerprint.get<std::string>();
  const auto& batch = field(j, "batch", path);
  QNAS_CHECK(batch.is_array(), path, ": batch is a JSON ", batch.type_name(), "; expected an array of genomes");
  for (size_t b = 0; b < batch.size(); ++b) {
    const std::string what = "batch[" + std::to_string(b) + "]";
    QNAS_CHECK(batch[b].is_array(), path, ": ", what, " is a JSON ", batch[b].type_name(), "; expected a genome");
    auto& genome = s.batch.emplace_back();
    for (const auto& gene : batch[b]) genome.push_back(whole(gene, what + " gene", path));
  }
  const auto& ref = field(j, "reference_point", path);
  if (ref.is_null()) return s;
  QNAS_CHECK(ref.is_array() && !ref.empty(), path, ": reference_point is ", ref.dump().substr(0, 40),
             "; expected null or an array of numbers");
  auto& point = s.reference.emplace();
  for (const auto& x : ref) {
    QNAS_CHECK(x.is_number() && std::isfinite(x.get<double>()), path, ": reference_point holds ",
               x.dump().substr(0, 40), "; expected finite numbers");
    point.push_back(x.get<double>());
  }
  return s;
}

SearchState load_state(const std::string& path) { return parse_state(core::read_text_file(path, "search state"), path); }

}  // namespace qnas::search
