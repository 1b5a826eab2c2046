// libFuzzer target: an image file of a class-per-folder data set, read as a
// PNG and as a JPEG (the readers take a path and pick the codec by its
// extension), header and decode in grey and RGB, then resized as the
// readers do. Every outcome but a qnas::Error is a finding; so is an
// allocation beyond libFuzzer's -rss_limit_mb (a header's size believed).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "src/core/error.hpp"
#include "src/core/image_codec.hpp"
#include "tests/fuzz/input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string stem = "/tmp/qnas_fuzz_image_" + std::to_string(::getpid());
  for (const char* ext : {".png", ".jpg"}) {
    const std::string path = stem + ext;
    if (!qnas::fuzz::write_input(path, data, size)) return 0;
    try {
      qnas::core::read_image_header(path);
    } catch (const qnas::Error&) {
    }
    for (int channels : {1, 3}) {
      try {
        qnas::core::resize_centre_crop(qnas::core::decode_image(path, channels), 28);
      } catch (const qnas::Error&) {
      }
    }
  }
  return 0;
}
