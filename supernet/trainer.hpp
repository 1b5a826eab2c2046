#pragma once
// Supernet training with the sandwich rule (largest, smallest and N random
// subnets per step, gradients summed) and in-place distillation: the
// largest subnet learns from labels (label smoothing), the others from the
// largest's detached soft predictions (weight train.kd_ratio) and labels
// (the rest). SGD with momentum, warm-up then cosine schedule per step.
// Checkpoint at the end of every epoch; resume continues from the last one
// and, given the seed and thread count, ends with the same weights as an
// uninterrupted run (every random stream is derived from (seed, epoch)).

#include <functional>
#include <map>
#include <string>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "supernet/checkpoint.hpp"
#include "supernet/supernet.hpp"

namespace qnas::supernet {

/// Named figures an epoch-end hook reports (e.g. validation top-1).
using EpochMetrics = std::map<std::string, double>;

struct TrainOptions {
  bool resume = false;
  /// Called after every train.eval_every-th epoch; its figures go to the log.
  std::function<EpochMetrics(int epoch)> on_epoch_end;
  /// Names of the figures on_epoch_end returns (log columns).
  std::vector<std::string> epoch_metric_names;
  /// Stop after this many epochs in this call (tests of resume); -1 = all.
  int stop_after_epochs = -1;
};

struct TrainSummary {
  int epochs_done = 0;
  double seconds = 0;
  double images_per_s = 0;
};

class Trainer {
 public:
  Trainer(const core::Config& config, Supernet net, const core::Dataset& data);

  /// Trains into config.output.dir (supernet.pt, space.json, train_log.csv).
  TrainSummary run(const TrainOptions& options);

  /// One sandwich step on a batch: forward/backward of every subnet, summed
  /// gradients, one optimizer step. Returns the largest subnet's loss.
  double step(const at::Tensor& images, const at::Tensor& labels, core::Rng& sampler, double lr);

  /// The same step on given subnets (the first is the teacher).
  double step_with(const at::Tensor& images, const at::Tensor& labels, const std::vector<SubnetSpec>& specs,
                   double lr);

  /// The subnets of one step: largest, smallest, then random ones.
  std::vector<SubnetSpec> sandwich(core::Rng& sampler) const;

  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  double lr_at(int64_t step, int64_t steps_per_epoch) const;
  void set_lr(double lr);

  core::Config cfg_;
  Supernet net_;
  const core::Dataset& data_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace qnas::supernet
