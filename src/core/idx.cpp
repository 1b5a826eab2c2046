#include "src/core/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

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
    out.dims.push_back(size);
    total *= size;
  }
  out.data.resize(size_t(total));
  const size_t got = read_bytes(f.get(), out.data.data(), out.data.size(), path);
  QNAS_CHECK(got == out.data.size(), "IDX file '", path, "': truncated data; header promises ",
             total, " bytes, file holds ", got);
  uint8_t extra;
  QNAS_CHECK(read_bytes(f.get(), &extra, 1, path) == 0, "IDX file '", path,
             "': trailing bytes after the ", total, " bytes the header promises");
  return out;
}

}  // namespace qnas::core
