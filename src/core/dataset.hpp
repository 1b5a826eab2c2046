#pragma once
// Image classification data in memory: train / validation / test splits of
// 8-bit pixels (N x C x H x W) and int64 labels, normalised per batch.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "src/core/config.hpp"

namespace qnas::core {

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
  at::Tensor pixels;  // uint8, N x C x H x W
  at::Tensor labels;  // int64, N
  PixelNorm norm;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// Images [start, start + n) normalised (float32).
  at::Tensor images(int64_t start, int64_t n) const;
  /// Every image of the split normalised: for small splits and tests.
  at::Tensor images() const { return images(0, size()); }
  /// The images at `index` (int64 tensor) normalised.
  at::Tensor images_at(const at::Tensor& index) const;
  /// The first n images (all when n <= 0 or more than there are).
  Split first(int64_t n) const;
};

struct Dataset {
  Split train, val, test;
  int64_t channels = 0, height = 0, width = 0, classes = 0;
  std::vector<std::string> class_names;
  PixelNorm norm;
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

/// Reads the data in cfg.format from cfg.dir, keeps the first
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
