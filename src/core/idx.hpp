#pragma once
// Reader for IDX files (the MNIST / Fashion-MNIST format), gzip or plain.
// Header: two zero bytes, a type byte (0x08 = unsigned byte), a dimension
// count, then one big-endian uint32 per dimension; the data follows.

#include <cstdint>
#include <string>
#include <vector>

namespace qnas::core {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;

  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
};

/// Reads an unsigned-byte IDX file with `expected_ndim` dimensions (3 for
/// images, 1 for labels). Throws qnas::Error naming the file for a missing
/// file, a wrong magic number, a truncated header or body, or trailing bytes.
IdxArray read_idx(const std::string& path, int expected_ndim);

/// The IDX magic number for unsigned-byte data with `ndim` dimensions.
constexpr uint32_t idx_magic(int ndim) { return 0x00000800u | uint32_t(ndim); }

}  // namespace qnas::core
