#include "src/core/loader.hpp"

#include <chrono>

#include "src/core/error.hpp"

namespace qnas::core {

BatchLoader::BatchLoader(const Split& split, std::vector<int64_t> order, int64_t batch, const Augment& augment,
                         uint64_t stream, int workers, int depth, int64_t first_step)
    : split_(split), order_(std::move(order)), batch_(batch), steps_(int64_t(order_.size()) / batch),
      augment_(augment), stream_(stream), depth_(std::max(1, depth)), next_to_build_(first_step),
      next_to_take_(first_step) {
  QNAS_CHECK(batch > 0 && workers >= 0, "BatchLoader: batch ", batch, ", workers ", workers,
             "; expected a positive batch and workers >= 0");
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  for (auto& t : workers_) t.join();
}

std::pair<at::Tensor, at::Tensor> BatchLoader::build(int64_t step) const {
  const std::vector<int64_t> index(order_.begin() + step * batch_, order_.begin() + (step + 1) * batch_);
  return make_batch(split_, index, augment_, stream_);
}

void BatchLoader::work() {
  for (;;) {
    int64_t step;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || (next_to_build_ < steps_ && next_to_build_ < next_to_take_ + depth_); });
      if (stop_) return;
      step = next_to_build_++;
    }
    std::pair<at::Tensor, at::Tensor> b;
    std::exception_ptr error;
    try {
      b = build(step);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error && !error_) error_ = error;
      ready_[step] = std::move(b);
    }
    changed_.notify_all();
  }
}

std::pair<at::Tensor, at::Tensor> BatchLoader::next() {
  QNAS_CHECK(next_to_take_ < steps_, "BatchLoader: step ", next_to_take_, " asked of an epoch of ", steps_, " steps");
  if (workers_.empty()) return build(next_to_take_++);
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return error_ || ready_.count(next_to_take_); });
  if (error_) std::rethrow_exception(error_);
  auto b = std::move(ready_.at(next_to_take_));
  ready_.erase(next_to_take_++);
  lock.unlock();
  changed_.notify_all();
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return b;
}

}  // namespace qnas::core
