#pragma once
// Image classification data: train / validation / test splits of 8-bit
// pixels (N x C x H x W) and int64 labels, normalised per batch. Pixels are
// held in memory, or (a folder too large for it) decoded from disk per batch.

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/core/config.hpp"

namespace qnas::core {

struct ImageFiles;  // core/readers.hpp

/// One value per channel as a [1, C, 1, 1] float32 tensor: how per-channel
/// normalisation broadcasts over N x C x H x W (here and in deployed graphs).
at::Tensor channel_tensor(const std::vector<double>& values);

/// x = (pixel / 255 - mean[c]) / std[c], one value per channel.
struct PixelNorm {
  std::vector<double> mean, std;

  /// uint8 N x C x H x W -> float32 N x C x H x W, normalised.
  at::Tensor operator()(const at::Tensor& pixels) const;
};

struct Split {
  at::Tensor pixels;  // uint8, N x C x H x W; undefined when streamed
  at::Tensor labels;  // int64, N
  PixelNorm norm;
  std::shared_ptr<const ImageFiles> files;  // streamed: image i is decoded from file rows[i]
  at::Tensor rows;                          // int64, N; streamed only

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  bool streamed() const { return files != nullptr; }
  /// Channels, height and width of every image.
  std::array<int64_t, 3> image_shape() const;
  /// uint8 pixels of images [start, start + n): a view, or decoded.
  at::Tensor raw(int64_t start, int64_t n) const;
  /// Images [start, start + n) normalised (float32).
  at::Tensor images(int64_t start, int64_t n) const;
  /// Every image of the split normalised: for small splits and tests.
  at::Tensor images() const { return images(0, size()); }
  /// The images at `index` (int64 tensor) normalised.
  at::Tensor images_at(const at::Tensor& index) const;
  /// The first n images (all when n <= 0 or more than there are).
  Split first(int64_t n) const;
  /// Images [start, start + n): a view.
  Split slice(int64_t start, int64_t n) const;
  /// The images at `index` (int64 tensor), in that order.
  Split subset(const at::Tensor& index) const;
};

struct Dataset {
  Split train, val, test;
  int64_t channels = 0, height = 0, width = 0, classes = 0;
  std::vector<std::string> class_names;
  PixelNorm norm;
  bool streamed = false;  // images decoded from disk per batch (data.storage)
};

/// Training-time augmentation of a batch.
struct Augment {
  int crop_padding = 0;        // random crop after padding by this many (black) pixels
  bool hflip = false;          // random horizontal flip
  bool random_resized = false; // random-resized crop (area 8-100 %, aspect 3/4-4/3), back to the image size
};

/// Gathers images `index` of `split` into one normalised batch (N x C x H x
/// W float32) and their labels. Each image's augmentation is drawn from
/// (stream, its index in the split) alone, so a batch does not depend on
/// which images share it or which thread builds it.
std::pair<at::Tensor, at::Tensor> make_batch(const Split& split, const std::vector<int64_t>& index,
                                             const Augment& augment, uint64_t stream);

/// Reads the data in cfg.format from cfg.dir (a folder held in memory or
/// streamed, as cfg.storage says), keeps the first
/// cfg.train_subset training images (0 = all), carves the validation split
/// (the last cfg.val_size, or a random choice seeded by `seed`), and
/// resolves mean/std (`auto`: per channel over the training images left).
Dataset load_dataset(const DataConfig& cfg, uint64_t seed, int threads = 1);

/// cfg with `auto` mean/std replaced by the values `d` computed: what a
/// resolved config records.
DataConfig resolved_data_config(const DataConfig& cfg, const Dataset& d);

/// Writes classes.json into `dir` (atomically): {"classes": [name of class
/// 0, class 1, ...]}, so a run folder or an export says what its logits mean.
void write_class_names(const std::vector<std::string>& names, const std::string& dir);

}  // namespace qnas::core
