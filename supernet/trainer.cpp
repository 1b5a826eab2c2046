#include "supernet/trainer.hpp"

#include "supernet/bn_act.hpp"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <optional>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/loader.hpp"
#include "src/core/progress.hpp"
#include "src/core/rng.hpp"
#include "src/core/world.hpp"

namespace qnas::supernet {

namespace {

namespace F = torch::nn::functional;

// " data wait 12%" when the step waited on its batches for over 5 % of the
// epoch so far (the data pipeline is the bottleneck), else "".
std::string data_wait(double wait_s, std::chrono::steady_clock::time_point epoch_start) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
  if (elapsed <= 0 || wait_s < 0.05 * elapsed) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, " data wait %.0f%%", 100.0 * wait_s / elapsed);
  return buf;
}

// Two parameter groups, with and without weight decay (the family decides
// which parameters decay), under train.optimizer.
template <class Optimizer, class Options>
std::unique_ptr<torch::optim::Optimizer> grouped(const SupernetImpl& net, const Options& opts, double weight_decay) {
  std::vector<at::Tensor> with_wd, without_wd;
  for (const auto& item : net.named_parameters())
    (net.decays(item.key()) ? with_wd : without_wd).push_back(item.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(with_wd, std::make_unique<Options>(Options(opts).weight_decay(weight_decay)));
  groups.emplace_back(without_wd, std::make_unique<Options>(Options(opts).weight_decay(0)));
  return std::make_unique<Optimizer>(groups, opts);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const SupernetImpl& net, const core::TrainConfig& t) {
  if (t.optimizer == "adamw")
    return grouped<torch::optim::AdamW>(net, torch::optim::AdamWOptions(t.lr), t.weight_decay);
  QNAS_CHECK(t.optimizer == "sgd", "train.optimizer: '", t.optimizer, "'; expected sgd or adamw");
  return grouped<torch::optim::SGD>(net, torch::optim::SGDOptions(t.lr).momentum(t.momentum).nesterov(t.nesterov),
                                    t.weight_decay);
}

// Soft cross-entropy against the teacher's probabilities.
at::Tensor distillation_loss(const at::Tensor& logits, const at::Tensor& teacher_probs) {
  return -(teacher_probs * at::log_softmax(logits, 1)).sum(1).mean();
}

std::string fmt(double v, const char* format = "%.4f") {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Drops log rows of epochs after `epochs_done` (a run killed between its log
// row and its checkpoint redoes that epoch), rewriting the file atomically.
void truncate_log(const std::string& path, int epochs_done) {
  if (!core::file_exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  for (int number = 1; std::getline(in, line); ++number) {
    if (number > 1 && !line.empty()) {
      int epoch = 0;
      try {
        epoch = std::stoi(core::csv_split(line)[0]);
      } catch (const std::exception&) {
        QNAS_THROW("training log '", path, "' line ", number, ": '", line,
                   "'; expected an epoch number first (delete the file to start a new log)");
      }
      if (epoch > epochs_done) continue;
    }
    kept += line + "\n";
  }
  core::write_file_atomic(path, kept);
}

// This rank's images of every step: the rank-th of `ranks` equal slices of
// each batch of `order`.
std::vector<int64_t> shard(const std::vector<int64_t>& order, int64_t batch, int64_t steps, int rank, int ranks) {
  const int64_t part = batch / ranks;
  std::vector<int64_t> out;
  out.reserve(size_t(steps * part));
  for (int64_t s = 0; s < steps; ++s) {
    const auto first = order.begin() + s * batch + rank * part;
    out.insert(out.end(), first, first + part);
  }
  return out;
}

// Every rank takes rank 0's values: weights (identical by seed, loaded
// from one checkpoint) and BN statistics (per shard during training).
void broadcast_state(const core::World& world, SupernetImpl& net, bool parameters) {
  if (world.size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> state;
  if (parameters)
    for (const auto& p : net.parameters()) state.push_back(p);
  for (const auto& b : net.buffers()) state.push_back(b);
  world.broadcast(state);
}

// A checkpoint's bytes as rank 0 reads them, for every rank (ranks on other
// hosts may not see the path); empty for one process, which reads it itself.
std::string checkpoint_bytes(const core::World& world, const std::string& path) {
  if (world.size() == 1) return {};
  return world.broadcast_bytes("checkpoint", world.coordinator() ? core::read_text_file(path, "checkpoint") : "");
}

}  // namespace

Trainer::Trainer(const core::Config& config, Supernet net, const core::Dataset& data,
                 std::shared_ptr<const core::World> world)
    : cfg_(config),
      net_(std::move(net)),
      data_(data),
      optimizer_(make_optimizer(*net_, config.train)),
      world_(world ? std::move(world) : std::make_shared<const core::World>()) {
  net_->set_quant_aware(config.train.quant_aware);
}

std::vector<SubnetSpec> Trainer::sandwich(core::Rng& sampler) const {
  const auto& space = net_->space();
  std::vector<SubnetSpec> specs{largest_spec(space), smallest_spec(space)};
  for (int i = 0; i < cfg_.train.random_subnets; ++i) specs.push_back(random_spec(space, sampler, /*with_policy=*/false));
  // Quantization-aware: the teacher stays fp32, every other subnet draws
  // its policies from the searched choices.
  if (cfg_.train.quant_aware)
    for (size_t i = 1; i < specs.size(); ++i) specs[i] = with_random_policy(space, specs[i], sampler);
  return specs;
}

double Trainer::lr_at(int64_t step, int64_t steps_per_epoch) const {
  const auto& t = cfg_.train;
  const int64_t total = int64_t(t.epochs) * steps_per_epoch;
  const int64_t warmup = std::min<int64_t>(total, int64_t(std::llround(t.warmup_epochs * double(steps_per_epoch))));
  if (step < warmup) return t.lr * double(step + 1) / double(warmup);
  const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  return 0.5 * t.lr * (1.0 + std::cos(M_PI * progress));
}

void Trainer::set_lr(double lr) {
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
}

double Trainer::step(const at::Tensor& images, const at::Tensor& labels, core::Rng& sampler, double lr) {
  return step_with(images, labels, sandwich(sampler), lr);
}

namespace {

// train.sync_bn over several ranks: BN's sums all-reduced for one step's
// forward and backward passes (every rank runs the same subnets, so the
// same BN calls); cleared after, so that rank 0's validation stays local.
class SyncBnStep {
 public:
  SyncBnStep(const std::shared_ptr<const core::World>& world, bool on) : on_(on && world->size() > 1) {
    if (on_)
      set_bn_sync({[world](std::vector<double>& v) {
        world->allreduce_sum({at::from_blob(v.data(), {int64_t(v.size())}, at::kDouble)});
      }});
  }
  ~SyncBnStep() {
    if (on_) set_bn_sync({});
  }

 private:
  bool on_;
};

}  // namespace

double Trainer::step_with(const at::Tensor& images, const at::Tensor& labels, const std::vector<SubnetSpec>& specs,
                          double lr) {
  const auto& t = cfg_.train;
  set_lr(lr);
  const SyncBnStep sync_bn(world_, t.sync_bn);
  // Gradients are reset to undefined, not zero: SGD then skips weights this
  // step's subnets did not use (no stale momentum push), and no gradient state
  // outlives a step, so a resumed run continues exactly.
  for (auto& p : net_->parameters()) p.mutable_grad().reset();
  const auto label_loss = [&](const at::Tensor& logits) {
    return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(t.label_smoothing));
  };
  // The stem is the same for many subnets (for all of them in fp32):
  // computed once per distinct stem, its backward run once on the sum of
  // its subnets' gradients.
  struct Stem {
    SubnetSpec spec;
    at::Tensor out, shared;
  };
  std::vector<Stem> stems;
  const auto stem_of = [&](const SubnetSpec& spec) -> const at::Tensor& {
    for (const auto& s : stems)
      if (net_->same_stem(s.spec, spec)) return s.shared;
    const at::Tensor out = net_->stem(images, spec);
    stems.push_back({spec, out, out.detach().requires_grad_(true)});
    return stems.back().shared;
  };
  const at::Tensor teacher_logits = net_->forward_from_stem(stem_of(specs[0]), specs[0]);
  const at::Tensor largest_loss = label_loss(teacher_logits);
  largest_loss.backward();
  const at::Tensor teacher = at::softmax(teacher_logits.detach(), 1);
  for (size_t i = 1; i < specs.size(); ++i) {
    const at::Tensor logits = net_->forward_from_stem(stem_of(specs[i]), specs[i]);
    at::Tensor loss = distillation_loss(logits, teacher) * t.kd_ratio;
    if (t.kd_ratio < 1.0) loss = loss + label_loss(logits) * (1.0 - t.kd_ratio);
    loss.backward();
  }
  for (const auto& s : stems) s.out.backward(s.shared.grad());
  const double loss = average_over_ranks(largest_loss.item<double>());
  if (t.grad_clip > 0) torch::nn::utils::clip_grad_norm_(net_->parameters(), t.grad_clip);
  optimizer_->step();
  return loss;
}

// Every rank ran the same subnets on its shard of the batch, so the mean of
// the ranks' gradients is the whole batch's gradient (BN aside: its batch
// statistics are per shard). The sandwich sums several backward passes into
// each gradient, so the all-reduce starts after the last one, every bucket
// in flight at once. The loss travels with the gradients.
double Trainer::average_over_ranks(double loss) {
  if (world_->size() == 1) return loss;
  std::vector<at::Tensor> tensors;
  for (auto& p : net_->parameters())
    if (p.grad().defined()) tensors.push_back(p.mutable_grad());
  const auto loss_tensor = at::full({1}, loss, at::kFloat);
  tensors.push_back(loss_tensor);
  const auto start = std::chrono::steady_clock::now();
  world_->allreduce_sum(tensors);
  allreduce_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double inverse = 1.0 / double(world_->size());
  for (auto& g : tensors) g.mul_(inverse);
  return loss_tensor.item<double>();
}

// Rank 0 decides: resume its checkpoint (sent to every rank), or start
// afresh; every rank then holds rank 0's weights.
TrainProgress Trainer::start(const TrainOptions& options, const std::string& ckpt) {
  const auto& t = cfg_.train;
  std::string decision;
  if (world_->coordinator()) {
    const bool exists = core::file_exists(ckpt);
    decision = options.resume && exists ? "resume"
               : exists && !options.resume ? "checkpoint '" + ckpt + "' exists; expected --resume to continue it, or a fresh output.dir"
               : !t.init_from.empty() && !core::file_exists(t.init_from)
                   ? "train.init_from: no file '" + t.init_from + "'; expected the supernet.pt of a trained supernet of the same space"
                   : "fresh";
  }
  decision = world_->broadcast_bytes("start", decision);
  QNAS_CHECK(decision == "resume" || decision == "fresh", decision);
  TrainProgress progress;
  progress.quant_aware = t.quant_aware;
  progress.optimizer = t.optimizer;
  if (decision == "resume") {
    progress = load_checkpoint(ckpt, *net_, optimizer_.get(), t.optimizer, checkpoint_bytes(*world_, ckpt));
    QNAS_CHECK(progress.quant_aware == t.quant_aware, "checkpoint '", ckpt, "' was trained with train.quant_aware: ",
               progress.quant_aware ? "true" : "false", "; expected the same setting to resume it (or a fresh output.dir)");
    if (world_->coordinator()) std::fprintf(stderr, "resuming from %s after epoch %d\n", ckpt.c_str(), progress.epochs_done);
  } else {
    if (world_->coordinator()) std::remove((cfg_.output.dir + "/train_log.csv").c_str());
    if (!t.init_from.empty()) {
      // Weights only: the optimizer, the schedule and the progress start afresh.
      load_checkpoint(t.init_from, *net_, nullptr, t.optimizer, checkpoint_bytes(*world_, t.init_from));
      if (world_->coordinator()) std::fprintf(stderr, "starting from the weights of %s\n", t.init_from.c_str());
    }
  }
  broadcast_state(*world_, *net_, /*parameters=*/true);
  return progress;
}

TrainSummary Trainer::run(const TrainOptions& options) {
  const auto& t = cfg_.train;
  const std::string dir = cfg_.output.dir;
  const std::string ckpt = checkpoint_path(dir);
  const bool writer = world_->coordinator();
  if (writer) core::ensure_dir(dir);
  TrainProgress progress = start(options, ckpt);
  const std::string log_path = dir + "/train_log.csv";
  std::vector<std::string> header{"epoch", "steps", "lr", "loss_largest", "images_per_s", "epoch_s"};
  header.insert(header.end(), options.epoch_metric_names.begin(), options.epoch_metric_names.end());
  std::optional<core::CsvAppender> log;
  if (writer) {
    truncate_log(log_path, progress.epochs_done);
    log.emplace(log_path, header);
  }

  const int64_t n = data_.train.size(), batch = t.batch_size;
  const int64_t steps_per_epoch = n / batch;
  QNAS_CHECK(steps_per_epoch > 0, "train.batch_size: ", batch, " is larger than the ", n,
             " training images; expected at most ", n);
  QNAS_CHECK(batch % world_->size() == 0, "train.batch_size: ", batch, " images cannot be shared equally by ",
             world_->size(), " ranks; expected a multiple of ", world_->size());
  const int last_epoch = options.stop_after_epochs < 0 ? t.epochs
                                                       : std::min(t.epochs, progress.epochs_done + options.stop_after_epochs);
  const core::Augment augment{t.augment.crop_padding, t.augment.hflip, t.augment.random_resized};
  core::Progress bar("train step", int64_t(last_epoch - progress.epochs_done) * steps_per_epoch, "img");
  int64_t images_seen = 0;
  net_->train();

  for (int epoch = progress.epochs_done + 1; epoch <= last_epoch; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    core::Rng shuffle(core::derive_seed(cfg_.seed, "shuffle", uint64_t(epoch)));
    core::Rng sampler(core::derive_seed(cfg_.seed, "sample", uint64_t(epoch)));
    torch::manual_seed(core::derive_seed(cfg_.seed, "torch", uint64_t(epoch)));
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(core::uniform_index(shuffle, i + 1))]);

    double loss_sum = 0, lr = 0;
    core::BatchLoader loader(data_.train, shard(order, batch, steps_per_epoch, world_->rank(), world_->size()),
                             batch / world_->size(), augment, core::derive_seed(cfg_.seed, "augment", uint64_t(epoch)),
                             cfg_.data.workers);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      auto [images, labels] = loader.next();
      images = images.contiguous(at::MemoryFormat::ChannelsLast);
      lr = lr_at(progress.steps_done, steps_per_epoch);
      const double loss = step(images, labels, sampler, lr);
      QNAS_CHECK(std::isfinite(loss), "training diverged at epoch ", epoch, " step ", s,
                 " (loss ", loss, "); expected a finite loss: lower train.lr or set train.grad_clip");
      loss_sum += loss;
      ++progress.steps_done;
      images_seen += batch;
      if (writer)
        bar.update(images_seen / batch, images_seen, "epoch " + std::to_string(epoch) + "/" + std::to_string(t.epochs) +
                                  " loss " + fmt(loss_sum / double(s + 1), "%.3f") + " lr " + fmt(lr) +
                                  data_wait(loader.wait_s(), epoch_start));
    }
    const double epoch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    std::vector<std::string> row{std::to_string(epoch), std::to_string(progress.steps_done), fmt(lr, "%.6f"),
                                 fmt(loss_sum / double(steps_per_epoch)),
                                 fmt(double(steps_per_epoch * batch) / epoch_s, "%.1f"), fmt(epoch_s, "%.2f")};
    broadcast_state(*world_, *net_, /*parameters=*/false);
    progress.epochs_done = epoch;
    if (writer) {
      const bool validate = options.on_epoch_end && t.eval_every > 0 && (epoch % t.eval_every == 0 || epoch == t.epochs);
      EpochMetrics metrics;
      if (validate) {
        net_->eval();
        metrics = options.on_epoch_end(epoch);
        net_->train();
      }
      for (const auto& name : options.epoch_metric_names)
        row.push_back(metrics.count(name) ? fmt(metrics.at(name)) : "");
      log->append(row);
      save_checkpoint(ckpt, *net_, optimizer_.get(), progress);
    }
    world_->barrier();  // the epoch is done everywhere once its checkpoint exists
  }
  if (writer) bar.finish();
  TrainSummary summary;
  summary.epochs_done = progress.epochs_done;
  summary.seconds = bar.elapsed_s();
  summary.images_per_s = summary.seconds > 0 ? double(images_seen) / summary.seconds : 0;
  summary.allreduce_s = allreduce_s_;
  return summary;
}

}  // namespace qnas::supernet
