// libFuzzer target: an export folder as load_deployed() reads it, up to the
// point where tensors are allocated: subnet.json and model.safetensors in
// one input, separated by the line "--qnas-safetensors--". The container
// is parsed and checked, the document checked against itself and the
// container. Every outcome but a qnas::Error is a finding; so is an
// allocation beyond libFuzzer's -rss_limit_mb (a claim believed before it
// was checked against the file).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "src/core/error.hpp"
#include "src/deploy/deployed_check.hpp"
#include "src/deploy/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr std::string_view kSeparator = "\n--qnas-safetensors--\n";
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto at = input.find(kSeparator);
  const auto doc_text = input.substr(0, at == std::string_view::npos ? size : at);
  const auto tensors = at == std::string_view::npos ? std::string_view() : input.substr(at + kSeparator.size());
  try {
    const auto file = qnas::deploy::parse_safetensors(tensors, "fuzz/model.safetensors");
    const auto doc = nlohmann::json::parse(doc_text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return 0;
    qnas::deploy::check_deployed(doc, file, "fuzz/subnet.json");
    // A checked entry's bytes lie inside the input: touch its first and last.
    for (const auto& e : file.tensors)
      if (e.end > e.begin) {
        volatile char first = tensors[file.data_start + e.begin], last = tensors[file.data_start + e.end - 1];
        (void)first;
        (void)last;
      }
  } catch (const qnas::Error&) {
  }
  return 0;
}
