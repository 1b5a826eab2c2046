// libFuzzer target: an IDX file (plain or gzip), read as images (3
// dimensions) and as labels (1). The reader takes a path, so the input is
// written to a file of this process first. Every outcome but a qnas::Error
// is a finding; so is an allocation beyond libFuzzer's -rss_limit_mb (a
// header's claim believed before the file was checked).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "src/core/error.hpp"
#include "src/core/idx.hpp"
#include "tests/fuzz/input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/qnas_fuzz_idx_" + std::to_string(::getpid());
  if (!qnas::fuzz::write_input(path, data, size)) return 0;
  for (int ndim : {3, 1}) {
    try {
      qnas::core::read_idx(path, ndim);
    } catch (const qnas::Error&) {
    }
  }
  return 0;
}
