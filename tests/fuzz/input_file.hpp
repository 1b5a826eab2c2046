#pragma once
// The readers take paths: a fuzz input is written to a file of this process
// first (plain stdio: no fsync, which would slow fuzzing to a crawl).
#include <cstddef>
#include <cstdio>
#include <string>

namespace qnas::fuzz {

inline bool write_input(const std::string& path, const void* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  return true;
}

}  // namespace qnas::fuzz
