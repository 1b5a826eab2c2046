#include "src/deploy/safetensors.hpp"

#include <algorithm>
#include <limits>

#include "src/core/error.hpp"

namespace qnas::deploy {

namespace {

using nlohmann::json;
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// a * b, or -1 when it overflows int64.
int64_t checked_mul(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return -1;
  return a * b;
}

uint64_t read_le64(std::string_view bytes) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  return v;
}

SafetensorsEntry parse_entry(const std::string& name, const json& j, uint64_t data_bytes, const std::string& where) {
  const std::string at = where + ": tensor '" + name + "'";
  QNAS_CHECK(j.is_object() && j.size() == 3 && j.contains("dtype") && j.contains("shape") && j.contains("data_offsets"),
             at, " is ", j.type_name(), " of ", j.size(), " keys; expected an object of dtype, shape and data_offsets");
  SafetensorsEntry e;
  e.name = name;
  const auto& dtype = j["dtype"];
  QNAS_CHECK(dtype.is_string() && safetensors_dtype_bytes(dtype.get<std::string>()) > 0, at, ": dtype ",
             dtype.dump(), "; expected one of \"F32\", \"I8\", \"U8\", \"I32\", \"I64\"");
  e.dtype = dtype.get<std::string>();
  const auto& shape = j["shape"];
  QNAS_CHECK(shape.is_array() && shape.size() <= 8, at, ": shape ", shape.dump().substr(0, 80),
             "; expected an array of at most 8 dimensions");
  int64_t bytes = safetensors_dtype_bytes(e.dtype);
  for (const auto& d : shape) {
    QNAS_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, at, ": shape dimension ", d.dump().substr(0, 40),
               "; expected an integer >= 0");
    e.shape.push_back(d.get<int64_t>());
    bytes = bytes < 0 ? -1 : checked_mul(bytes, e.shape.back());
  }
  QNAS_CHECK(bytes >= 0 && uint64_t(bytes) <= data_bytes, at, ": shape ", shape.dump(), " of ", e.dtype,
             " needs more bytes than the file's ", data_bytes, " of data");
  const auto& range = j["data_offsets"];
  QNAS_CHECK(range.is_array() && range.size() == 2 && range[0].is_number_unsigned() && range[1].is_number_unsigned(),
             at, ": data_offsets ", range.dump().substr(0, 80), "; expected [begin, end], two integers >= 0");
  e.begin = range[0].get<uint64_t>();
  e.end = range[1].get<uint64_t>();
  QNAS_CHECK(e.begin <= e.end && e.end <= data_bytes, at, ": data_offsets [", e.begin, ", ", e.end,
             "]; expected 0 <= begin <= end <= ", data_bytes, " (the data section's size)");
  QNAS_CHECK(e.end - e.begin == uint64_t(bytes), at, ": data_offsets span ", e.end - e.begin, " bytes; its shape ",
             shape.dump(), " of ", e.dtype, " is ", bytes, " bytes");
  return e;
}

// The ranges must tile [0, data_bytes): sorted, each starting where the last ended.
void check_tiling(std::vector<SafetensorsEntry> entries, uint64_t data_bytes, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t next = 0;
  for (const auto& e : entries) {
    QNAS_CHECK(e.begin >= next, where, ": tensor '", e.name, "' at bytes [", e.begin, ", ", e.end,
               ") overlaps the tensor before it (which ends at ", next, "); expected disjoint ranges");
    QNAS_CHECK(e.begin == next, where, ": bytes [", next, ", ", e.begin, ") of the data belong to no tensor (before '",
               e.name, "'); expected no holes");
    next = e.end;
  }
  QNAS_CHECK(next == data_bytes, where, ": the last ", data_bytes - next,
             " bytes of the data belong to no tensor; expected the tensors to cover the data section");
}

}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& e : tensors)
    if (e.name == name) return &e;
  return nullptr;
}

int64_t safetensors_dtype_bytes(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "I8" || dtype == "U8") return 1;
  if (dtype == "I64") return 8;
  return 0;
}

std::string safetensors_header(const json& metadata, const std::vector<SafetensorsEntry>& entries) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const auto& e : entries) header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);
  return out + text;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& path) {
  const std::string where = "safetensors file '" + path + "'";
  QNAS_CHECK(bytes.size() >= 8, where, ": ", bytes.size(), " bytes; expected an 8-byte header length first");
  const uint64_t size = read_le64(bytes);
  QNAS_CHECK(size <= bytes.size() - 8 && size <= kMaxHeaderBytes, where, ": header length ", size, " in a file of ",
             bytes.size(), " bytes; expected at most the file's remaining ", bytes.size() - 8, " and at most ",
             kMaxHeaderBytes);
  const json header = json::parse(bytes.substr(8, size), nullptr, /*allow_exceptions=*/false);
  QNAS_CHECK(!header.is_discarded(), where, ": the ", size, "-byte header is not JSON");
  QNAS_CHECK(header.is_object(), where, ": header is a JSON ", header.type_name(), "; expected an object");
  SafetensorsFile out;
  out.data_start = 8 + size;
  const uint64_t data_bytes = bytes.size() - out.data_start;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      QNAS_CHECK(entry.is_object(), where, ": __metadata__ is a JSON ", entry.type_name(), "; expected an object");
      for (const auto& [key, value] : entry.items())
        QNAS_CHECK(value.is_string(), where, ": __metadata__ key '", key, "' is ", value.type_name(),
                   "; expected a string");
      out.metadata = entry;
      continue;
    }
    out.tensors.push_back(parse_entry(name, entry, data_bytes, where));
  }
  check_tiling(out.tensors, data_bytes, where);
  return out;
}

}  // namespace qnas::deploy
