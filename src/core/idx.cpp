#include "src/core/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <memory>
#include <vector>

#include "src/core/error.hpp"

namespace qnas::core {

namespace {

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Reads up to n bytes; zlib reads plain files transparently.
size_t read_bytes(gzFile f, void* dst, size_t n, const std::string& path) {
  size_t done = 0;
  auto* out = static_cast<uint8_t*>(dst);
  while (done < n) {
    const unsigned chunk = unsigned(std::min<size_t>(n - done, 1u << 30));
    const int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      QNAS_THROW("IDX file '", path, "': read error (", msg, "); is the gzip stream corrupt?");
    }
    if (got == 0) break;
    done += size_t(got);
  }
  return done;
}

// A plain (not gzip) file's size, else -1: a gzip stream's size is known
// only once it is read.
int64_t plain_file_size(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return -1;
  uint8_t head[2] = {0, 0};
  const size_t n = std::fread(head, 1, 2, f);
  const bool gzip = n == 2 && head[0] == 0x1f && head[1] == 0x8b;
  const int64_t size = std::fseek(f, 0, SEEK_END) == 0 ? int64_t(std::ftell(f)) : -1;
  std::fclose(f);
  return gzip ? -1 : size;
}

std::string dims_text(const std::vector<int64_t>& dims, int64_t next) {
  std::string s;
  for (int64_t d : dims) s += std::to_string(d) + " x ";
  return s + std::to_string(next);
}

// A file claiming more than this is refused outright (a CIFAR-sized set is
// 0.15 GB; ImageNet's 1.28 M 224x224x3 images 193 GB).
constexpr int64_t kMaxIdxBytes = int64_t(1) << 40;
// The data buffer grows from this size by doubling, as bytes arrive.
constexpr size_t kFirstChunk = size_t(1) << 24;

}  // namespace

IdxArray read_idx(const std::string& path, int expected_ndim) {
  std::FILE* probe = std::fopen(path.c_str(), "rb");
  QNAS_CHECK(probe != nullptr, "IDX file '", path, "': cannot open (", std::strerror(errno), ")");
  std::fclose(probe);
  GzFile f(gzopen(path.c_str(), "rb"));
  QNAS_CHECK(f != nullptr, "IDX file '", path, "': cannot open");

  uint8_t magic[4];
  QNAS_CHECK(read_bytes(f.get(), magic, 4, path) == 4, "IDX file '", path,
             "': truncated header; expected a 4-byte magic number");
  const uint32_t got_magic = (uint32_t(magic[0]) << 24) | (uint32_t(magic[1]) << 16) |
                             (uint32_t(magic[2]) << 8) | magic[3];
  const uint32_t want_magic = idx_magic(expected_ndim);
  QNAS_CHECK(got_magic == want_magic, "IDX file '", path, "': magic number ", hex32(got_magic),
             "; expected ", hex32(want_magic), " (unsigned bytes, ", expected_ndim,
             expected_ndim == 1 ? " dimension: labels)" : " dimensions: images)");

  IdxArray out;
  int64_t total = 1;
  for (int d = 0; d < expected_ndim; ++d) {
    uint8_t b[4];
    QNAS_CHECK(read_bytes(f.get(), b, 4, path) == 4, "IDX file '", path,
               "': truncated header; expected ", expected_ndim, " dimension sizes");
    const int64_t size = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | b[3];
    QNAS_CHECK(size > 0, "IDX file '", path, "': dimension ", d, " is 0; expected a positive size");
    QNAS_CHECK(total <= kMaxIdxBytes / size, "IDX file '", path, "': the header claims more than ",
               kMaxIdxBytes, " bytes of data (dimensions so far ", dims_text(out.dims, size), "); not an IDX file qnas reads");
    out.dims.push_back(size);
    total *= size;
  }
  // What the header claims is checked against what the file holds before it
  // is allocated: a plain file by its size, a gzip stream as it is read.
  const int64_t on_disk = plain_file_size(path);
  const int64_t header_bytes = 4 + 4 * int64_t(expected_ndim);
  QNAS_CHECK(on_disk < 0 || on_disk - header_bytes >= total, "IDX file '", path, "': truncated data; header promises ",
             total, " bytes, file holds ", on_disk - header_bytes);
  size_t got = 0;
  while (got < size_t(total)) {
    out.data.resize(std::min<size_t>(size_t(total), std::max<size_t>(2 * got, kFirstChunk)));
    const size_t n = read_bytes(f.get(), out.data.data() + got, out.data.size() - got, path);
    got += n;
    if (got < out.data.size()) break;
  }
  QNAS_CHECK(got == size_t(total), "IDX file '", path, "': truncated data; header promises ", total,
             " bytes, file holds ", got);
  uint8_t extra;
  QNAS_CHECK(read_bytes(f.get(), &extra, 1, path) == 0, "IDX file '", path,
             "': trailing bytes after the ", total, " bytes the header promises");
  return out;
}

}  // namespace qnas::core
