#pragma once
// Supernet training with the sandwich rule (largest, smallest and N random
// subnets per step, gradients summed) and in-place distillation: the
// largest subnet learns from labels (label smoothing), the others from the
// largest's detached soft predictions (weight train.kd_ratio) and labels
// (the rest). SGD with momentum, warm-up then cosine schedule per step.
// Checkpoint at the end of every epoch; resume continues from the last one
// and, given the seed and thread count, ends with the same weights as an
// uninterrupted run (every random stream is derived from (seed, epoch)).
//
// Data parallel over a core::World of several processes: every rank trains
// the same subnets (the same streams) on its shard of each batch, the
// gradients are averaged by all-reduce before the optimizer step, rank 0
// alone writes the checkpoint and the log, and a resume (also with another
// number of ranks) loads rank 0's checkpoint on every rank.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "supernet/checkpoint.hpp"
#include "supernet/supernet.hpp"

namespace qnas::core {
class World;
}

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
  double allreduce_s = 0;  // of `seconds`, this rank's wait in the gradient all-reduce (several ranks)
};

class Trainer {
 public:
  /// `world` = nullptr: this process alone.
  Trainer(const core::Config& config, Supernet net, const core::Dataset& data,
          std::shared_ptr<const core::World> world = nullptr);

  /// Trains into config.output.dir (supernet.pt, space.json, train_log.csv).
  /// on_epoch_end runs on rank 0 only.
  TrainSummary run(const TrainOptions& options);

  /// One sandwich step on a batch (this rank's shard of it): forward/backward
  /// of every subnet, summed gradients averaged over the ranks, one
  /// optimizer step. Returns the largest subnet's loss (over the ranks).
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
  double average_over_ranks(double loss);
  TrainProgress start(const TrainOptions& options, const std::string& ckpt);

  core::Config cfg_;
  Supernet net_;
  const core::Dataset& data_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::shared_ptr<const core::World> world_;
  double allreduce_s_ = 0;
};

}  // namespace qnas::supernet
