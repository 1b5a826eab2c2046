#pragma once
// Image classification data in memory: train / validation / test splits as
// normalised float tensors (N x 1 x H x W) and int64 labels.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>
#include <string>

#include "src/core/config.hpp"

namespace qnas::core {

struct Split {
  at::Tensor images;  // float32, N x 1 x H x W, normalised
  at::Tensor labels;  // int64, N
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

struct Dataset {
  Split train, val, test;
  int64_t height = 0, width = 0, classes = 0;
  double mean = 0, std = 1;

  /// The normalised value of a black (0) pixel: what padding fills with.
  float pad_value() const { return float(-mean / std); }
};

/// Training-time augmentation of a batch.
struct Augment {
  int crop_padding = 0;  // random crop after padding by this many pixels
  bool hflip = false;    // random horizontal flip
};

/// Gathers images `index` of `split` into one batch (N x C x H x W), each
/// augmented with choices drawn from `rng`. Returns images and labels.
std::pair<at::Tensor, at::Tensor> make_batch(const Split& split, const std::vector<int64_t>& index,
                                             const Augment& augment, float pad_value, std::mt19937_64& rng);

/// Finds `<dir>/<stem>` or `<dir>/<stem>.gz`; throws naming both when absent.
std::string find_idx_file(const std::string& dir, const std::string& stem);

/// Loads train and test IDX files from cfg.dir, keeps the first
/// cfg.train_subset training images (0 = all), carves the validation split
/// (the last cfg.val_size, or a random choice seeded by `seed`).
Dataset load_dataset(const DataConfig& cfg, uint64_t seed);

}  // namespace qnas::core
