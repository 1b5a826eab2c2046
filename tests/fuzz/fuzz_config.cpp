// libFuzzer target: a YAML config and `--set` overrides, as `qnas` reads
// them. Input: the YAML text, optionally followed by a line "#--set" and one
// override ("key.path=value") per line. Every outcome but a qnas::Error (an
// uncaught exception of another type, a crash, a leak, undefined behaviour)
// is a finding.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "src/core/config.hpp"
#include "src/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  const auto cut = text.find("\n#--set\n");
  if (cut != std::string::npos) {
    std::istringstream lines(text.substr(cut + 8));
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
    text.resize(cut);
  }
  try {
    const auto config = qnas::core::parse_config(text, "fuzz.yaml", overrides);
    qnas::core::to_yaml(config);  // a config that validates also resolves
  } catch (const qnas::Error&) {
  }
  return 0;
}
