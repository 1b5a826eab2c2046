#include "src/core/image_codec.hpp"

#include <png.h>
// jpeglib.h needs FILE and size_t declared first.
#include <cstdio>
#include <cstddef>
#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h, which it needs

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <memory>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"

namespace qnas::core {

namespace {

std::string lower_extension(const std::string& path) {
  const auto dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool is_png(const std::string& path) { return lower_extension(path) == "png"; }

// Codecs read and write pixels interleaved (HWC); qnas keeps them planar (CHW).
std::vector<uint8_t> interleaved(const Image& image) {
  const int64_t plane = image.height * image.width;
  std::vector<uint8_t> out(image.pixels.size());
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t c = 0; c < image.channels; ++c) out[size_t(p * image.channels + c)] = image.pixels[size_t(c * plane + p)];
  return out;
}

Image planar(const std::vector<uint8_t>& hwc, int64_t channels, int64_t height, int64_t width) {
  Image out{channels, height, width, std::vector<uint8_t>(hwc.size())};
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t c = 0; c < channels; ++c) out.pixels[size_t(c * plane + p)] = hwc[size_t(p * channels + c)];
  return out;
}

// A header's size is checked before anything is allocated for it: a few
// bytes of PNG or JPEG can claim gigapixels. The cap admits 11,585^2 pixels.
constexpr int64_t kMaxImagePixels = int64_t(1) << 27;

bool within_cap(const ImageHeader& h) {
  return h.height > 0 && h.width > 0 && h.height <= kMaxImagePixels / h.width;
}

ImageHeader checked_size(const std::string& path, ImageHeader h) {
  QNAS_CHECK(within_cap(h), "image '", path, "': ", h.width, " x ", h.height, " pixels; expected at most ",
             kMaxImagePixels, " pixels");
  return h;
}

// ---- PNG: libpng's simplified API reports errors in image.message.

// Deflate expands at most 1,032-fold and a 1-bit row packs 8 pixels per byte:
// a PNG of `bytes` bytes holds at most 8 * 1032 * bytes pixels.
ImageHeader png_checked_size(const std::string& path, ImageHeader h) {
  checked_size(path, h);
  const int64_t bytes = regular_file_size(path, "image");
  QNAS_CHECK(h.height <= 8 * 1032 * bytes / h.width, "image '", path, "': ", h.width, " x ", h.height,
             " pixels; more than a PNG of ", bytes, " bytes can hold");
  return h;
}

struct PngReader {
  png_image image;
  explicit PngReader(const std::string& path) {
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    QNAS_CHECK(png_image_begin_read_from_file(&image, path.c_str()) != 0, "image '", path,
               "': not a readable PNG (", image.message, ")");
  }
  ~PngReader() { png_image_free(&image); }
};

ImageHeader png_header(const PngReader& r, const std::string& path) {
  return png_checked_size(path, {int64_t(r.image.height), int64_t(r.image.width), (r.image.format & PNG_FORMAT_FLAG_COLOR) != 0});
}

ImageHeader png_header(const std::string& path) { return png_header(PngReader(path), path); }

Image png_decode(const std::string& path, int64_t channels) {
  PngReader r(path);
  png_header(r, path);
  r.image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  std::vector<uint8_t> hwc(PNG_IMAGE_SIZE(r.image));
  png_color black{0, 0, 0};  // what transparent pixels are composed onto
  QNAS_CHECK(png_image_finish_read(&r.image, &black, hwc.data(), 0, nullptr) != 0, "image '", path,
             "': corrupt PNG (", r.image.message, ")");
  return planar(hwc, channels, int64_t(r.image.height), int64_t(r.image.width));
}

// ---- JPEG: libjpeg reports errors through error_exit, which must not
// return; it jumps back to the reader, which throws.

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg pads a scan whose data ends early (at the end of the file, or at a
// marker such as EOI) with grey and only warns: a few hundred bytes would
// then decode to as many pixels as the header claims. Both are errors here.
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  const int code = cinfo->err->msg_code;
  if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) jpeg_error_exit(cinfo);
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_file(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode));
  QNAS_CHECK(f != nullptr, "image '", path, "': cannot open (", std::strerror(errno), ")");
  return f;
}

// Runs the decompressor on `path` up to the header (and, with `pixels`, the
// scanlines into it as `channels` interleaved planes). Returns the header.
ImageHeader jpeg_read(const std::string& path, int64_t channels, std::vector<uint8_t>* pixels) {
  File f = open_file(path, "rb");
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.output_message = [](j_common_ptr) {};  // warnings (e.g. extraneous bytes) stay quiet
  err.mgr.emit_message = jpeg_emit_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    QNAS_THROW("image '", path, "': corrupt or unsupported JPEG (", err.message, ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f.get());
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  const ImageHeader header{int64_t(cinfo.image_height), int64_t(cinfo.image_width), cinfo.num_components > 1};
  if (cmyk || !pixels || !within_cap(header)) {
    jpeg_destroy_decompress(&cinfo);
    checked_size(path, header);
    QNAS_CHECK(!cmyk, "image '", path, "': a CMYK JPEG; expected grey or RGB");
    return header;
  }
  cinfo.out_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_start_decompress(&cinfo);
  // Grown as rows decode, not sized from the header: a claim costs memory
  // only as far as the file's data reaches.
  const size_t row_bytes = size_t(header.width * channels), all = size_t(header.height) * row_bytes;
  while (cinfo.output_scanline < cinfo.output_height) {
    const size_t end = (size_t(cinfo.output_scanline) + 1) * row_bytes;
    if (pixels->size() < end) pixels->resize(std::min(all, std::max(end, 2 * pixels->size())));
    JSAMPROW row = pixels->data() + end - row_bytes;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return header;
}

Image jpeg_decode(const std::string& path, int64_t channels) {
  std::vector<uint8_t> hwc;
  const ImageHeader h = jpeg_read(path, channels, &hwc);
  return planar(hwc, channels, h.height, h.width);
}

// ---- Resampling: a triangle filter widened by the scale factor when
// shrinking (PIL's antialiased bilinear), separable.

struct Taps {
  std::vector<int64_t> first;  // first source index per output
  std::vector<std::vector<float>> weights;
};

Taps taps(int64_t in_size, double start, double length, int64_t out_size) {
  const double scale = length / double(out_size), support = std::max(1.0, scale);
  Taps t;
  for (int64_t o = 0; o < out_size; ++o) {
    const double centre = start + (double(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, int64_t(std::floor(centre - support)));
    const int64_t hi = std::min<int64_t>(in_size, int64_t(std::ceil(centre + support)));
    std::vector<float> w;
    double sum = 0;
    for (int64_t i = lo; i < hi; ++i) {
      const double x = std::abs((double(i) + 0.5 - centre) / support);
      w.push_back(float(std::max(0.0, 1.0 - x)));
      sum += w.back();
    }
    if (sum <= 0) {  // a window outside the image: nearest edge pixel
      const int64_t i = std::clamp<int64_t>(int64_t(centre), 0, in_size - 1);
      t.first.push_back(i);
      t.weights.push_back({1.0f});
      continue;
    }
    for (float& v : w) v = float(v / sum);
    t.first.push_back(lo);
    t.weights.push_back(std::move(w));
  }
  return t;
}

}  // namespace

bool is_image_file(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

ImageHeader read_image_header(const std::string& path) {
  QNAS_CHECK(is_image_file(path), "image '", path, "': expected a .png, .jpg or .jpeg file");
  return is_png(path) ? png_header(path) : jpeg_read(path, 0, nullptr);
}

Image decode_image(const std::string& path, int64_t channels) {
  QNAS_CHECK(channels == 1 || channels == 3, "decode_image: ", channels, " channels; expected 1 or 3");
  QNAS_CHECK(is_image_file(path), "image '", path, "': expected a .png, .jpg or .jpeg file");
  return is_png(path) ? png_decode(path, channels) : jpeg_decode(path, channels);
}

void resample(const uint8_t* in, int64_t channels, int64_t in_h, int64_t in_w, double y0, double x0, double h,
              double w, uint8_t* out, int64_t out_h, int64_t out_w) {
  const Taps ty = taps(in_h, y0, h, out_h), tx = taps(in_w, x0, w, out_w);
  std::vector<float> rows(static_cast<size_t>(in_h * out_w));  // horizontal pass, one channel at a time
  for (int64_t c = 0; c < channels; ++c) {
    const uint8_t* src = in + c * in_h * in_w;
    for (int64_t y = 0; y < in_h; ++y)
      for (int64_t x = 0; x < out_w; ++x) {
        float acc = 0;
        const auto& wx = tx.weights[size_t(x)];
        for (size_t k = 0; k < wx.size(); ++k) acc += wx[k] * float(src[y * in_w + tx.first[size_t(x)] + int64_t(k)]);
        rows[size_t(y * out_w + x)] = acc;
      }
    uint8_t* dst = out + c * out_h * out_w;
    for (int64_t y = 0; y < out_h; ++y)
      for (int64_t x = 0; x < out_w; ++x) {
        float acc = 0;
        const auto& wy = ty.weights[size_t(y)];
        for (size_t k = 0; k < wy.size(); ++k) acc += wy[k] * rows[size_t((ty.first[size_t(y)] + int64_t(k)) * out_w + x)];
        dst[y * out_w + x] = uint8_t(std::clamp(std::lround(acc), 0l, 255l));
      }
  }
}

Image resize_centre_crop(const Image& in, int64_t size) {
  if (in.height == size && in.width == size) return in;
  // The square the output covers, in source pixels, centred.
  const double side = double(std::min(in.height, in.width));
  Image out{in.channels, size, size, std::vector<uint8_t>(size_t(in.channels * size * size))};
  resample(in.pixels.data(), in.channels, in.height, in.width, (double(in.height) - side) / 2,
           (double(in.width) - side) / 2, side, side, out.pixels.data(), size, size);
  return out;
}

void write_png(const std::string& path, const Image& image) {
  QNAS_CHECK(image.channels == 1 || image.channels == 3, "write_png '", path, "': ", image.channels,
             " channels; expected 1 or 3");
  const std::vector<uint8_t> hwc = interleaved(image);
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = png_uint_32(image.width);
  png.height = png_uint_32(image.height);
  png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  QNAS_CHECK(png_image_write_to_file(&png, path.c_str(), 0, hwc.data(), 0, nullptr) != 0, "write_png '",
             path, "': ", png.message);
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  QNAS_CHECK(image.channels == 1 || image.channels == 3, "write_jpeg '", path, "': ", image.channels,
             " channels; expected 1 or 3");
  const std::vector<uint8_t> hwc = interleaved(image);
  File f = open_file(path, "wb");
  jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    QNAS_THROW("write_jpeg '", path, "': ", err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f.get());
  cinfo.image_width = JDIMENSION(image.width);
  cinfo.image_height = JDIMENSION(image.height);
  cinfo.input_components = int(image.channels);
  cinfo.in_color_space = image.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(hwc.data()) + size_t(cinfo.next_scanline) * size_t(image.width * image.channels);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
}

}  // namespace qnas::core
