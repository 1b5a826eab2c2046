#include "src/eval/evaluator.hpp"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <chrono>
#include <numeric>

#include "src/core/error.hpp"
#include "src/core/rng.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/simulate.hpp"
#include "src/eval/latency.hpp"

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

double top1(const Forward& forward, const core::Split& split, int64_t batch_size) {
  QNAS_CHECK(split.size() > 0, "top-1 on an empty split; expected images (is data.val_size 0?)");
  c10::InferenceMode guard;
  int64_t correct = 0;
  for_batches(split.images, batch_size, [&](int64_t start, const at::Tensor& x) {
    const auto pred = forward(as_input(x)).argmax(1);
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

Prepared Evaluator::prepare(const supernet::SubnetSpec& spec, std::map<std::string, double>* phase_s) const {
  Stopwatch watch;
  Prepared p;
  p.subnet = net_->extract(spec);
  watch.lap("extract", phase_s);
  recalibrate_bn(*p.subnet, bn_images_, cfg_.eval.batch_size);
  watch.lap("bn_recal", phase_s);
  p.subnet->fold_bn();
  p.graph = deploy::build_graph(*p.subnet);
  deploy::calibrate(p.graph, act_images_, cfg_.eval.batch_size);
  watch.lap("calibrate", phase_s);
  return p;
}

namespace {

// Largest |a - b| over the split's logits, and top-1 of `deployed`.
std::pair<double, double> deployed_agreement(const deploy::Graph& graph, const deploy::Int8Model& model,
                                             const core::Split& s, int64_t batch_size) {
  double max_diff = 0;
  const double acc = top1(
      [&](const at::Tensor& x) {
        const auto y = model.forward(x);
        max_diff = std::max(max_diff, (y - deploy::simulate(graph, x)).abs().max().item<double>());
        return y;
      },
      s, batch_size);
  return {acc, max_diff};
}

// "w4 weights stored packed, widened at load onto int8 kernels: stem, s0.b0.pw1"
std::vector<std::string> widening_notes(const deploy::Graph& graph) {
  std::map<std::string, std::string> layers_by_kind;
  for (const auto& n : graph.nodes) {
    if (!n.has_weight() || n.weight_bits >= 8) continue;
    auto& list = layers_by_kind["w" + std::to_string(n.weight_bits) + " weights stored packed, widened at load onto " +
                                (n.int8 ? "int8" : "fp32") + " kernels"];
    list += (list.empty() ? "" : ", ") + n.name;
  }
  std::vector<std::string> notes;
  for (const auto& [what, layers] : layers_by_kind) notes.push_back(what + ": " + layers);
  return notes;
}

}  // namespace

void Evaluator::measure_latency_of(const deploy::Graph& graph, Metrics& m) const {
  const auto& lc = cfg_.latency;
  const int64_t rss_before = current_rss_bytes();
  const bool peak_ok = reset_peak_rss();
  deploy::Int8Model model(graph);
  const Forward forward = [&](const at::Tensor& x) { return model.forward(x); };
  const LatencyOptions opts{lc.threads, lc.warmup, lc.runs};
  add_latency_metrics(measure_latency(forward, as_input(act_images_.narrow(0, 0, 1).repeat({lc.batch_size, 1, 1, 1})), opts), m);
  if (peak_ok) m["peak_rss_bytes"] = double(std::max<int64_t>(0, peak_rss_bytes() - rss_before));
  if (lc.throughput_batch > 0) {
    const auto batch = as_input(act_images_.narrow(0, 0, 1).repeat({lc.throughput_batch, 1, 1, 1}));
    m["throughput_img_s"] = 1000.0 * double(lc.throughput_batch) / measure_latency(forward, batch, opts).median_ms;
  }
}

EvalResult Evaluator::evaluate(const supernet::SubnetSpec& spec, const std::string& split_name,
                               const EvalOptions& opts) const {
  const auto start = std::chrono::steady_clock::now();
  EvalResult r;
  r.spec = spec;
  r.split = split_name;
  auto p = prepare(spec, &r.phase_s);
  Stopwatch watch;
  core::Split s = split(split_name);
  if (opts.max_images > 0 && opts.max_images < s.size())
    s = {s.images.narrow(0, 0, opts.max_images), s.labels.narrow(0, 0, opts.max_images)};
  r.images = s.size();
  r.layers = p.subnet->layer_infos();
  r.metrics = cost_metrics(r.layers);
  r.metrics["model_bytes"] = double(p.graph.model_bytes());
  r.metrics["top1"] = top1([&](const at::Tensor& x) { return deploy::simulate(p.graph, x); }, s, cfg_.eval.batch_size);
  watch.lap("top1", &r.phase_s);
  r.notes = widening_notes(p.graph);
  if (opts.latency) {
    measure_latency_of(p.graph, r.metrics);
    watch.lap("latency", &r.phase_s);
  }
  if (opts.deployed) {
    deploy::Int8Model model(p.graph);
    const auto [acc, diff] = deployed_agreement(p.graph, model, s, cfg_.eval.batch_size);
    r.metrics["top1_deployed"] = acc;
    r.metrics["max_logit_diff"] = diff;
    r.metrics["int8_layers"] = model.int8_layers();
    r.metrics["fp32_layers"] = model.fp32_layers();
    watch.lap("deployed", &r.phase_s);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace qnas::eval
