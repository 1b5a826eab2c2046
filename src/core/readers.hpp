#pragma once
// The dataset formats qnas reads (data.format), each into 8-bit pixels in
// memory. LibTorch-free: core/dataset.cpp turns them into tensors.
//
//   idx     MNIST / Fashion-MNIST: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//   cifar   CIFAR-10 binary (data_batch_*.bin, test_batch.bin; record = label
//           byte + 3072 pixel bytes) or CIFAR-100 binary (train.bin,
//           test.bin; record = coarse byte, fine byte, 3072 pixel bytes)
//   folder  <dir>/train/<class>/*.{png,jpg,jpeg} and <dir>/test/<class>/...
//           (or val/); classes are the sorted subfolder names of train/;
//           decoded at load, or left on disk and decoded per batch
//           (data.storage) when the decoded images would not fit in memory

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qnas::core {

/// Image files left on disk, decoded when a batch asks for them: a folder
/// dataset larger than memory. Thread-safe.
struct ImageFiles {
  std::vector<std::string> paths;
  int64_t channels = 0, height = 0, width = 0;
  int64_t image_size = 0;  // > 0: shorter side scaled to it, centred square kept
  int threads = 1;         // decode threads for a batch asked for on one thread

  int64_t image_bytes() const { return channels * height * width; }
  /// Decodes paths[i] into `out` (image_bytes() bytes, planar); throws
  /// qnas::Error naming the file when it is unreadable or has changed size.
  void decode(int64_t i, uint8_t* out) const;
  /// Decodes paths[index[k]] into out + k * image_bytes(), on `threads`.
  void decode(const int64_t* index, int64_t n, uint8_t* out) const;
};

/// Images of one split: N x C x H x W bytes, planar, and their class ids;
/// or, streamed, the files to decode them from (pixels then stay empty).
struct ImageSet {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  std::string source;  // the file or folder it came from, for messages
  std::shared_ptr<const ImageFiles> files;  // set when streamed

  int64_t size() const { return int64_t(labels.size()); }
  int64_t image_bytes() const { return channels * height * width; }
};

struct RawDataset {
  ImageSet train, test;
  std::vector<std::string> class_names;  // index = class id
  bool streamed = false;                 // images decoded per batch from disk
};

/// MNIST / Fashion-MNIST IDX files in `dir` (gzip or plain).
RawDataset read_idx_dataset(const std::string& dir);

/// CIFAR-10 or CIFAR-100 binary batches in `dir`; `labels` = fine | coarse
/// chooses CIFAR-100's label byte (CIFAR-10 has one).
RawDataset read_cifar(const std::string& dir, const std::string& labels);

/// A class-per-subfolder image tree. `image_size` > 0 scales each image's
/// shorter side to it and keeps the centred square; 0 requires every image
/// to have the same size. Grey images become RGB when any image is colour.
/// `storage`: memory decodes every image now (on `threads`), stream leaves
/// them on disk, auto streams when the decoded images would take more than
/// half of the memory available.
RawDataset read_image_folder(const std::string& dir, int64_t image_size, const std::string& storage, int threads);

/// Whether `storage` (auto | memory | stream) streams `bytes` of decoded
/// images when `available` bytes of memory are free (0 = unknown: memory).
bool stream_images(const std::string& storage, uint64_t bytes, uint64_t available);

/// MemAvailable from /proc/meminfo in bytes; 0 where it cannot be read.
uint64_t available_memory_bytes();

/// Finds `<dir>/<stem>` or `<dir>/<stem>.gz`; throws naming both when absent.
std::string find_idx_file(const std::string& dir, const std::string& stem);

}  // namespace qnas::core
