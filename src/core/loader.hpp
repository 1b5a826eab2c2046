#pragma once
// One epoch's training batches, built ahead of the training step on worker
// threads (decoding is done at load time; this is gathering, augmentation
// and normalisation). Bounded: at most `depth` batches wait at a time.
// Batches come out in step order and each depends only on (stream, its
// images), so the number of workers never changes what is trained.

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "src/core/dataset.hpp"

namespace qnas::core {

class BatchLoader {
 public:
  /// Batches of `batch` consecutive entries of `order` (a whole number of
  /// them), from step `first_step` on. workers = 0 builds each batch when
  /// next() asks for it, on the caller's thread.
  BatchLoader(const Split& split, std::vector<int64_t> order, int64_t batch, const Augment& augment, uint64_t stream,
              int workers, int depth = 4, int64_t first_step = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// The next step's images (normalised) and labels; blocks until built.
  std::pair<at::Tensor, at::Tensor> next();
  /// Seconds next() has spent waiting for a batch: > 0 when the data, not
  /// the training, is the bottleneck.
  double wait_s() const { return wait_s_; }

 private:
  std::pair<at::Tensor, at::Tensor> build(int64_t step) const;
  void work();

  const Split& split_;
  const std::vector<int64_t> order_;
  const int64_t batch_, steps_;
  const Augment augment_;
  const uint64_t stream_;
  const int depth_;
  int64_t next_to_build_, next_to_take_;
  std::map<int64_t, std::pair<at::Tensor, at::Tensor>> ready_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
  double wait_s_ = 0;
};

}  // namespace qnas::core
