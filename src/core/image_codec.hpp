#pragma once
// PNG and JPEG files to 8-bit pixels (libpng, libjpeg-turbo), and the one
// resize the data readers use. LibTorch-free: the readers run before any
// tensor exists.

#include <cstdint>
#include <string>
#include <vector>

namespace qnas::core {

/// An image's size and colour, read from its header without decoding it.
struct ImageHeader {
  int64_t height = 0, width = 0;
  bool colour = false;  // RGB (or palette / RGBA) rather than grey
};

/// 8-bit pixels, planar: channels x height x width.
struct Image {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

/// True for names ending in .png, .jpg or .jpeg (any case).
bool is_image_file(const std::string& path);

/// Reads the header of a PNG or JPEG file. Throws qnas::Error naming the
/// file when it is unreadable, neither format, or corrupt.
ImageHeader read_image_header(const std::string& path);

/// Decodes a PNG or JPEG file into `channels` (1 = grey, 3 = RGB) planes;
/// colour is converted (grey to RGB, RGB to grey by the codec's rule, alpha
/// dropped). Throws qnas::Error naming the file.
Image decode_image(const std::string& path, int64_t channels);

/// Scales the shorter side to `size` with an area-weighted (antialiased)
/// bilinear filter, then keeps the centred size x size square.
Image resize_centre_crop(const Image& in, int64_t size);

/// Resamples the window (y0, x0, h, w) of `in` (real coordinates) to
/// out_h x out_w with the same filter: random-resized crops use it.
void resample(const uint8_t* in, int64_t channels, int64_t in_h, int64_t in_w, double y0, double x0, double h,
              double w, uint8_t* out, int64_t out_h, int64_t out_w);

/// Writes 8-bit planar pixels (1 or 3 channels) as a PNG file: the tests and
/// experiments make image folders with it.
void write_png(const std::string& path, const Image& image);

/// Writes 8-bit planar pixels (1 or 3 channels) as a baseline JPEG file.
void write_jpeg(const std::string& path, const Image& image, int quality);

}  // namespace qnas::core
