#pragma once
// The safetensors container (huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {"name": {"dtype", "shape",
// "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data, the
// offsets relative to its start. The reader trusts nothing the file says:
// every claim is checked against the file's own size before a byte is
// allocated for it. No LibTorch here, so the fuzz target builds without it.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qnas::deploy {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // F32, I8, U8, I32 or I64
  std::vector<int64_t> shape;  // every dimension >= 0
  uint64_t begin = 0, end = 0; // byte range in the data section
  int64_t numel() const;
};

struct SafetensorsFile {
  nlohmann::json metadata = nlohmann::json::object();  // string -> string
  std::vector<SafetensorsEntry> tensors;               // by name
  uint64_t data_start = 0;                             // byte offset of the data section in the file

  /// The entry named `name`, or nullptr.
  const SafetensorsEntry* find(const std::string& name) const;
};

/// Bytes per element of a dtype qnas reads and writes (F32, I8, U8, I32,
/// I64); 0 for any other name.
int64_t safetensors_dtype_bytes(const std::string& dtype);

/// The header bytes (length + JSON, padded with spaces so the data starts
/// 8-byte aligned) of tensors laid out back to back in `entries`' order.
std::string safetensors_header(const nlohmann::json& metadata, const std::vector<SafetensorsEntry>& entries);

/// Parses and checks the container in `bytes` (the whole file; `path` names
/// it in errors): the header length within the file and at most 100 MB (the
/// reference implementation's limit), the header a JSON object, each entry's
/// dtype known, its shape non-negative with a byte size that fits the data
/// and equals its offsets' range, and the ranges covering the data section
/// exactly once (no overlap, no hole: the format forbids both).
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& path);

}  // namespace qnas::deploy
