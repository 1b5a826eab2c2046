#pragma once
// The dataset formats qnas reads (data.format), each into 8-bit pixels in
// memory. LibTorch-free: core/dataset.cpp turns them into tensors.
//
//   idx     MNIST / Fashion-MNIST: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//   cifar   CIFAR-10 binary (data_batch_*.bin, test_batch.bin; record = label
//           byte + 3072 pixel bytes) or CIFAR-100 binary (train.bin,
//           test.bin; record = coarse byte, fine byte, 3072 pixel bytes)
//   folder  <dir>/train/<class>/*.{png,jpg,jpeg} and <dir>/test/<class>/...
//           (or val/); classes are the sorted subfolder names of train/

#include <cstdint>
#include <string>
#include <vector>

namespace qnas::core {

/// Images of one split: N x C x H x W bytes, planar, and their class ids.
struct ImageSet {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  std::string source;  // the file or folder it came from, for messages

  int64_t size() const { return int64_t(labels.size()); }
  int64_t image_bytes() const { return channels * height * width; }
};

struct RawDataset {
  ImageSet train, test;
  std::vector<std::string> class_names;  // index = class id
};

/// MNIST / Fashion-MNIST IDX files in `dir` (gzip or plain).
RawDataset read_idx_dataset(const std::string& dir);

/// CIFAR-10 or CIFAR-100 binary batches in `dir`; `labels` = fine | coarse
/// chooses CIFAR-100's label byte (CIFAR-10 has one).
RawDataset read_cifar(const std::string& dir, const std::string& labels);

/// A class-per-subfolder image tree. `image_size` > 0 scales each image's
/// shorter side to it and keeps the centred square; 0 requires every image
/// to have the same size. Grey images become RGB when any image is colour.
/// `threads` decode in parallel.
RawDataset read_image_folder(const std::string& dir, int64_t image_size, int threads);

/// Finds `<dir>/<stem>` or `<dir>/<stem>.gz`; throws naming both when absent.
std::string find_idx_file(const std::string& dir, const std::string& stem);

}  // namespace qnas::core
