// libFuzzer target: a CIFAR binary data set folder (data.format: cifar).
// The reader takes a folder, so each input is unpacked into files of this
// process's own folder first:
//
//   byte 0       flags: bit 0 CIFAR-100 layout (train.bin, test.bin, 2 label
//                bytes), bit 1 coarse labels, bit 2 a second CIFAR-10 batch,
//                bit 3 a folder where the test batch should be
//   then         sections, each a 4-byte little-endian length (cut to what is
//                left) and its bytes: the class-names file, the first
//                training batch, [the second], the test batch
//
// Seeds: tests/fuzz/make_cifar_seeds.py. Every outcome but a qnas::Error is
// a finding; so is an allocation beyond libFuzzer's -rss_limit_mb.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "src/core/error.hpp"
#include "src/core/readers.hpp"
#include "tests/fuzz/input_file.hpp"

namespace {

struct Input {
  const uint8_t* data;
  size_t size;

  // The next section: its length prefix, then at most what is left.
  std::string section() {
    uint32_t n = 0;
    for (int i = 0; i < 4 && size > 0; ++i, ++data, --size) n |= uint32_t(*data) << (8 * i);
    const size_t take = n < size ? n : size;
    std::string s(reinterpret_cast<const char*>(data), take);
    data += take;
    size -= take;
    return s;
  }
};

void write(const std::string& path, const std::string& bytes) { qnas::fuzz::write_input(path, bytes.data(), bytes.size()); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const std::string dir = "/tmp/qnas_fuzz_cifar_" + std::to_string(::getpid());
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  Input in{data + 1, size - 1};
  fs::remove_all(dir);
  fs::create_directories(dir);
  const bool cifar100 = flags & 1;
  const std::string labels = flags & 2 ? "coarse" : "fine";
  write(dir + (cifar100 ? "/" + labels + "_label_names.txt" : "/batches.meta.txt"), in.section());
  if (cifar100) {
    write(dir + "/train.bin", in.section());
  } else {
    write(dir + "/data_batch_1.bin", in.section());
    if (flags & 4) write(dir + "/data_batch_2.bin", in.section());
  }
  const std::string test = dir + (cifar100 ? "/test.bin" : "/test_batch.bin");
  if (flags & 8)
    fs::create_directory(test);
  else
    write(test, in.section());
  try {
    qnas::core::read_cifar(dir, labels);
  } catch (const qnas::Error&) {
  }
  return 0;
}
