#include "src/eval/evaluator.hpp"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <chrono>
#include <numeric>

#include "src/core/error.hpp"
#include "src/core/rng.hpp"

namespace qnas::eval {

namespace {

// Inputs in channels-last order: oneDNN's fastest layout for these convs.
at::Tensor as_input(const at::Tensor& images) { return images.contiguous(at::MemoryFormat::ChannelsLast); }

template <class F>
void for_batches(const at::Tensor& images, int64_t batch_size, F f) {
  for (int64_t start = 0; start < images.size(0); start += batch_size)
    f(start, images.narrow(0, start, std::min(batch_size, images.size(0) - start)));
}

// Wall time of consecutive phases.
class Stopwatch {
 public:
  void lap(const char* name, std::map<std::string, double>* out) {
    const auto now = std::chrono::steady_clock::now();
    if (out) (*out)[name] = std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

void recalibrate_bn(supernet::SubnetImpl& net, const at::Tensor& images, int64_t batch_size) {
  std::vector<std::shared_ptr<torch::nn::BatchNorm2dImpl>> bns;
  for (const auto& m : net.modules(/*include_self=*/false))
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) bns.push_back(bn);
  // momentum = None: a cumulative average over the calibration batches.
  for (auto& bn : bns) {
    bn->reset_running_stats();
    bn->options.momentum(c10::nullopt);
    bn->train();
  }
  {
    at::NoGradGuard no_grad;
    for_batches(images, batch_size, [&](int64_t, const at::Tensor& x) { net.forward(as_input(x)); });
  }
  for (auto& bn : bns) {
    bn->options.momentum(0.1);
    bn->eval();
  }
}

double top1(supernet::SubnetImpl& net, const core::Split& split, int64_t batch_size) {
  QNAS_CHECK(split.size() > 0, "top-1 on an empty split; expected images (is data.val_size 0?)");
  c10::InferenceMode guard;
  int64_t correct = 0;
  for_batches(split.images, batch_size, [&](int64_t start, const at::Tensor& x) {
    const auto pred = net.forward(as_input(x)).argmax(1);
    correct += pred.eq(split.labels.narrow(0, start, x.size(0))).sum().item<int64_t>();
  });
  return 100.0 * double(correct) / double(split.size());
}

Evaluator::Evaluator(const core::Config& config, supernet::Supernet net, const core::Dataset& data)
    : cfg_(config), net_(std::move(net)), data_(data) {
  const int64_t n = data.train.size();
  const int64_t k = std::min<int64_t>(n, config.eval.bn_calib_images);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  core::Rng rng(core::derive_seed(config.seed, "bn_calib"));
  for (int64_t i = 0; i < k; ++i) std::swap(order[size_t(i)], order[size_t(i + core::uniform_index(rng, n - i))]);
  const auto index = at::tensor(std::vector<int64_t>(order.begin(), order.begin() + k), at::kLong);
  bn_images_ = data.train.images.index_select(0, index);
  act_images_ = bn_images_.narrow(0, 0, std::min<int64_t>(k, config.quant.calib_images));
}

const core::Split& Evaluator::split(const std::string& name) const {
  if (name == "val") return data_.val;
  if (name == "test") return data_.test;
  QNAS_THROW("split '", name, "'; expected val or test");
}

supernet::Subnet Evaluator::prepare(const supernet::SubnetSpec& spec, std::map<std::string, double>* phase_s) const {
  Stopwatch watch;
  auto subnet = net_->extract(spec);
  watch.lap("extract", phase_s);
  recalibrate_bn(*subnet, bn_images_, cfg_.eval.batch_size);
  watch.lap("bn_recal", phase_s);
  subnet->fold_bn();
  subnet->quantize_weights();
  subnet->observe_activations(true);
  {
    c10::InferenceMode guard;
    for_batches(act_images_, cfg_.eval.batch_size, [&](int64_t, const at::Tensor& x) { subnet->forward(as_input(x)); });
  }
  subnet->observe_activations(false);
  watch.lap("calibrate", phase_s);
  return subnet;
}

EvalResult Evaluator::evaluate(const supernet::SubnetSpec& spec, const std::string& split_name,
                               int64_t max_images) const {
  const auto start = std::chrono::steady_clock::now();
  EvalResult r;
  r.spec = spec;
  r.split = split_name;
  auto subnet = prepare(spec, &r.phase_s);
  Stopwatch watch;
  core::Split s = split(split_name);
  if (max_images > 0 && max_images < s.size())
    s = {s.images.narrow(0, 0, max_images), s.labels.narrow(0, 0, max_images)};
  r.images = s.size();
  r.metrics = cost_metrics(subnet->layer_infos());
  r.metrics["top1"] = top1(*subnet, s, cfg_.eval.batch_size);
  watch.lap("top1", &r.phase_s);
  r.layers = subnet->layer_infos();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace qnas::eval
