#include "src/eval/evaluator.hpp"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <chrono>
#include <numeric>
#include <optional>

#include "src/core/error.hpp"
#include "src/core/rng.hpp"
#include "src/deploy/export.hpp"
#include "src/deploy/simulate.hpp"
#include "src/eval/latency.hpp"
#include "src/quant/fake_quant.hpp"
#include "src/quant/policy.hpp"

namespace qnas::eval {

namespace {

// Inputs in channels-last order: oneDNN's fastest layout for these convs.
at::Tensor as_input(const at::Tensor& images) { return images.contiguous(at::MemoryFormat::ChannelsLast); }

template <class F>
void for_batches(const at::Tensor& images, int64_t batch_size, F f) {
  for (int64_t start = 0; start < images.size(0); start += batch_size)
    f(start, images.narrow(0, start, std::min(batch_size, images.size(0) - start)));
}

// A split's images, normalised one batch at a time.
template <class F>
void for_batches(const core::Split& split, int64_t batch_size, F f) {
  for (int64_t start = 0; start < split.size(); start += batch_size)
    f(start, split.images(start, std::min(batch_size, split.size() - start)));
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

void recalibrate_bn_quantized(supernet::SubnetImpl& net, const at::Tensor& images, int64_t batch_size) {
  QNAS_CHECK(!net.bn_folded(), "recalibrate_bn_quantized: the subnet's BN is folded already; expected an extracted subnet");
  at::NoGradGuard no_grad;
  // Per-output-channel symmetric grids commute with BN folding's per-channel
  // scale, so the unfolded weights quantize onto the grid the folded ones do.
  // Methods that fit their weights to the fp32 layer (GPTQ, decoupleQ, the
  // CP factorizations) deploy no such grid and keep the mean of the fp32
  // outputs: their BN keeps fp32 statistics, which the fitted weights match
  // (RTN-grid statistics there undo what the fit corrected).
  std::vector<std::pair<supernet::ConvUnit, at::Tensor>> saved;
  for (auto& unit : net.units()) {
    const auto& policy = net.policy(unit->desc().name);
    if (!policy.deploys_rtn_grid(unit->desc().groups() > 1)) continue;
    saved.emplace_back(unit, unit->weight.clone());
    unit->weight.copy_(quant::fake_quant_weight(unit->weight, policy.weight_bits));
  }
  recalibrate_bn(net, images, batch_size);
  for (auto& [unit, weight] : saved) unit->weight.copy_(weight);
}

namespace {

int64_t count_correct(const at::Tensor& logits, const core::Split& split, int64_t start) {
  return logits.argmax(1).eq(split.labels.narrow(0, start, logits.size(0))).sum().item<int64_t>();
}

double percent(int64_t correct, const core::Split& split) { return 100.0 * double(correct) / double(split.size()); }

void check_not_empty(const core::Split& split) {
  QNAS_CHECK(split.size() > 0, "top-1 on an empty split; expected images (is data.val_size 0?)");
}

}  // namespace

deploy::InputDesc input_desc(const core::Dataset& d) {
  return {d.channels, d.height, d.width, d.norm.mean, d.norm.std};
}

double top1(const Forward& forward, const core::Split& split, int64_t batch_size) {
  check_not_empty(split);
  c10::InferenceMode guard;
  int64_t correct = 0;
  for_batches(split, batch_size, [&](int64_t start, const at::Tensor& x) {
    correct += count_correct(forward(as_input(x)), split, start);
  });
  return percent(correct, split);
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
  bn_images_ = data.train.images_at(index);
  act_images_ = bn_images_.narrow(0, 0, std::min<int64_t>(k, config.quant.calib_images));
}

namespace {
const core::Split& split_of(const core::Dataset& data, const std::string& name) {
  if (name == "val") return data.val;
  if (name == "test") return data.test;
  QNAS_THROW("split '", name, "'; expected val or test");
}
}  // namespace

const core::Split& Evaluator::split(const std::string& name) const { return split_of(data_, name); }

quant::ActObserverSpec act_observer_spec(const core::QuantConfig& q) {
  quant::ActObserverSpec spec;
  spec.clip = q.act_observer == "percentile" ? quant::Clip::kPercentile
              : q.act_observer == "mse"      ? quant::Clip::kMse
                                             : quant::Clip::kMinMax;
  spec.percentile = q.act_percentile;
  return spec;
}

Prepared Evaluator::prepare(const supernet::SubnetSpec& spec, std::map<std::string, double>* phase_s) const {
  Stopwatch watch;
  Prepared p;
  p.subnet = net_->extract(spec);
  watch.lap("extract", phase_s);
  if (cfg_.eval.bn_recal_quantized) {
    recalibrate_bn_quantized(*p.subnet, bn_images_, cfg_.eval.batch_size);
  } else {
    recalibrate_bn(*p.subnet, bn_images_, cfg_.eval.batch_size);
  }
  watch.lap("bn_recal", phase_s);
  p.subnet->fold_bn();
  return prepare(p.subnet, spec, phase_s);
}

Prepared Evaluator::prepare(const supernet::Subnet& folded, const supernet::SubnetSpec& spec,
                            std::map<std::string, double>* phase_s) const {
  QNAS_CHECK(folded->bn_folded() && folded->spec().supernet == spec.supernet && folded->spec().arch == spec.arch,
             "evaluator: a prepared subnet of another architecture (or not BN-folded); expected the spec's own");
  Stopwatch watch;
  Prepared p;
  p.subnet = folded;
  p.subnet->set_policies(spec.policy);
  p.graph = calibrated_graph(*p.subnet);
  watch.lap("calibrate", phase_s);
  if (deploy::needs_compression(p.graph)) {
    p.compression = deploy::compress_weights(p.graph, *p.subnet, act_images_,
                                             {cfg_.quant.hessian_images, cfg_.quant.hessian_samples_per_column,
                                              cfg_.eval.batch_size, act_observer_spec(cfg_.quant)});
    watch.lap("compress", phase_s);
  }
  return p;
}

deploy::Graph Evaluator::calibrated_graph(const supernet::SubnetImpl& subnet) const {
  auto graph = deploy::build_graph(subnet, input_desc(data_));
  deploy::calibrate(graph, act_images_, cfg_.eval.batch_size, act_observer_spec(cfg_.quant));
  return graph;
}

namespace {

// One pass over the split: top1 of the simulation, top1_deployed of the int8
// runtime, and the largest |logit difference| between them.
// `to_input` turns a batch of the split into the graph's input.
void measure_agreement(const deploy::Graph& graph, const deploy::Int8Model& model, const core::Split& split,
                       int64_t batch_size, Metrics& m, const Forward& to_input = as_input) {
  check_not_empty(split);
  c10::InferenceMode guard;
  int64_t sim_correct = 0, int8_correct = 0;
  double max_diff = 0;
  for_batches(split, batch_size, [&](int64_t start, const at::Tensor& batch) {
    const auto x = to_input(batch);
    const auto sim = deploy::simulate(graph, x), int8 = model.forward(x);
    sim_correct += count_correct(sim, split, start);
    int8_correct += count_correct(int8, split, start);
    max_diff = std::max(max_diff, (int8 - sim).abs().max().item<double>());
  });
  m["top1"] = percent(sim_correct, split);
  m["top1_deployed"] = percent(int8_correct, split);
  m["max_logit_diff"] = max_diff;
}

// "w4 weights stored packed, widened at load onto int8 kernels: stem, s0.b0.pw1"
std::vector<std::string> deployment_notes(const deploy::Graph& graph) {
  std::map<std::string, std::string> layers_by_kind;
  for (const auto& n : graph.nodes) {
    if (!n.has_weight() || n.weight_bits >= 8) continue;
    auto& list = layers_by_kind["w" + std::to_string(n.weight_bits) + " weights stored packed, widened at load onto " +
                                (n.int8 ? "int8" : "fp32") + " kernels"];
    list += (list.empty() ? "" : ", ") + n.name;
  }
  for (const auto& n : graph.nodes) {
    if (n.kind != deploy::OpKind::kScale) continue;
    auto& list = layers_by_kind["smoothquant divisions by an fp32 scale node (no foldable producer)"];
    list += (list.empty() ? "" : ", ") + n.name;
  }
  std::vector<std::string> notes;
  for (const auto& [what, layers] : layers_by_kind) notes.push_back(what + ": " + layers);
  return notes;
}

}  // namespace

namespace {

TimedForward forward_of(const deploy::Int8Model& model) {
  return [&model](const at::Tensor& x) { return model.forward(x); };
}

}  // namespace

supernet::SubnetSpec Evaluator::latency_reference_spec() const {
  quant::LayerPolicy w8a8;
  w8a8.weight_bits = 8;
  w8a8.act_bits = 8;
  return supernet::largest_spec(net_->space(), w8a8);
}

const deploy::Int8Model& Evaluator::latency_reference() const {
  if (!reference_) reference_ = std::make_shared<const deploy::Int8Model>(prepare(latency_reference_spec()).graph);
  return *reference_;
}

double Evaluator::latency_anchor_ms() const {
  if (anchor_ms_ > 0) return anchor_ms_;
  core::LatencyConfig lc = cfg_.latency;
  lc.runs *= 3;
  anchor_ms_ = measure_latency(forward_of(latency_reference()), latency_input(lc.batch_size), lc).median_ms;
  return anchor_ms_;
}

void Evaluator::set_latency_anchor_ms(double ms) {
  QNAS_CHECK(ms > 0, "latency anchor ", ms, " ms; expected a positive time");
  anchor_ms_ = ms;
}

// Latency does not depend on the pixels: one image repeated to the batch.
at::Tensor Evaluator::latency_input(int64_t n) const {
  return as_input(act_images_.narrow(0, 0, 1).repeat({n, 1, 1, 1}));
}

LatencyStats Evaluator::latency_of(const deploy::Int8Model& model, double* ratio) const {
  const auto& lc = cfg_.latency;
  if (lc.reference == "none") return measure_latency(forward_of(model), latency_input(lc.batch_size), lc);
  const double anchor = latency_anchor_ms();
  const auto t =
      measure_interleaved({forward_of(latency_reference()), forward_of(model)}, latency_input(lc.batch_size), lc);
  const auto r = t.ratio(1);
  if (ratio) *ratio = r.median_ms;
  return scaled(r, anchor);
}

void Evaluator::measure_latency_of(const deploy::Int8Model& model, Metrics& m) const {
  const auto& lc = cfg_.latency;
  double ratio = 0;
  add_latency_metrics(latency_of(model, &ratio), m);
  if (lc.reference != "none") m["latency_ratio"] = ratio;
  if (lc.throughput_batch > 0)
    m["throughput_img_s"] =
        1000.0 * double(lc.throughput_batch) /
        measure_latency(forward_of(model), latency_input(lc.throughput_batch), lc).median_ms;
}

EvalResult Evaluator::evaluate(const supernet::SubnetSpec& spec, const std::string& split_name,
                               const EvalOptions& opts) const {
  const auto start = Clock::now();
  EvalResult r;
  r.spec = spec;
  r.split = split_name;
  auto p = prepare(spec, &r.phase_s);
  return measure(std::move(p), std::move(r), opts, start);
}

EvalResult Evaluator::evaluate(const supernet::Subnet& folded, const supernet::SubnetSpec& spec,
                               const std::string& split_name, const EvalOptions& opts) const {
  const auto start = Clock::now();
  EvalResult r;
  r.spec = spec;
  r.split = split_name;
  auto p = prepare(folded, spec, &r.phase_s);
  return measure(std::move(p), std::move(r), opts, start);
}

// evaluate() after prepare(): r holds the spec, the split's name and the
// preparation's phases; `start` is when the preparation began.
EvalResult Evaluator::measure(Prepared p, EvalResult r, const EvalOptions& opts, Clock::time_point start) const {
  Stopwatch watch;
  const auto s = split(r.split).first(opts.max_images);
  r.images = s.size();
  r.layers = p.subnet->layer_infos();
  r.compression = p.compression;
  r.metrics = cost_metrics(r.layers);
  // The layer list counts one activation range per quantized layer input; the
  // graph counts the ranges the deployed model actually stores.
  r.metrics["model_bytes"] = double(p.graph.model_bytes());
  r.notes = deployment_notes(p.graph);
  std::optional<deploy::Int8Model> model;
  if (opts.latency) {
    // peak_rss_bytes: what building the deployed model and running it at the latency batch add.
    const int64_t rss_before = current_rss_bytes();
    const bool peak_ok = reset_peak_rss();
    model.emplace(p.graph);
    measure_latency_of(*model, r.metrics);
    if (peak_ok) r.metrics["peak_rss_bytes"] = double(std::max<int64_t>(0, peak_rss_bytes() - rss_before));
    watch.lap("latency", &r.phase_s);
  }
  if (opts.deployed) {
    if (!model) model.emplace(p.graph);
    measure_agreement(p.graph, *model, s, cfg_.eval.batch_size, r.metrics);
    r.metrics["int8_layers"] = model->int8_layers();
    r.metrics["fp32_layers"] = model->fp32_layers();
    watch.lap("top1", &r.phase_s);
  } else {
    r.metrics["top1"] = top1([&](const at::Tensor& x) { return deploy::simulate(p.graph, x); }, s, cfg_.eval.batch_size);
    watch.lap("top1", &r.phase_s);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

namespace {

// Images normalised as `from` says, normalised as `to` says instead.
Forward renormalizer(const deploy::InputDesc& from, const deploy::InputDesc& to) {
  if (from.mean == to.mean && from.std == to.std) return as_input;
  const auto scale = from.std_tensor() / to.std_tensor(), shift = (from.mean_tensor() - to.mean_tensor()) / to.std_tensor();
  return [scale, shift](const at::Tensor& x) { return as_input(x * scale + shift); };
}

void check_fits(const deploy::Graph& g, const core::Dataset& data, const Forward& to_input, const std::string& dir) {
  const auto& in = g.input_desc;
  QNAS_CHECK(in.channels == data.channels && in.height == data.height && in.width == data.width, "'", dir,
             "': the model takes ", in.channels, "x", in.height, "x", in.width, " images; the config's data are ",
             data.channels, "x", data.height, "x", data.width);
  const auto& split = data.test.size() > 0 ? data.test : data.val;
  if (split.size() == 0) return;
  c10::InferenceMode guard;
  const int64_t classes = deploy::simulate(g, to_input(split.images(0, 1))).size(1);
  QNAS_CHECK(classes == data.classes, "'", dir, "': the model has ", classes, " outputs; the config's data have ",
             data.classes, " classes");
}

}  // namespace

ExportEvaluation evaluate_export(const std::string& dir, const core::Config& config, const core::Dataset& data,
                                 const std::string& split_name, const EvalOptions& opts) {
  const auto start = std::chrono::steady_clock::now();
  Stopwatch watch;
  ExportEvaluation out;
  EvalResult& r = out.result;
  r.split = split_name;
  auto loaded = deploy::load_deployed(dir);
  out.spec = std::move(loaded.spec);
  const auto& g = loaded.graph;
  const auto to_input = renormalizer(input_desc(data), g.input_desc);
  check_fits(g, data, to_input, dir);
  deploy::use_onednn_engine();
  const deploy::Int8Model model(g);
  watch.lap("load", &r.phase_s);
  const auto split = split_of(data, split_name).first(opts.max_images);
  r.images = split.size();
  measure_agreement(g, model, split, config.eval.batch_size, r.metrics, to_input);
  r.metrics["model_bytes"] = double(g.model_bytes());
  r.metrics["int8_layers"] = model.int8_layers();
  r.metrics["fp32_layers"] = model.fp32_layers();
  watch.lap("top1", &r.phase_s);
  if (opts.latency) {
    const auto& lc = config.latency;
    const auto x = to_input(split.images(0, 1)).repeat({lc.batch_size, 1, 1, 1});
    add_latency_metrics(measure_latency(forward_of(model), as_input(x), lc), r.metrics);
    watch.lap("latency", &r.phase_s);
    r.notes.push_back("latency timed alone at batch " + std::to_string(lc.batch_size) +
                      " (an export has no supernet reference to scale by)");
  }
  for (auto& note : deployment_notes(g)) r.notes.push_back(std::move(note));
  if (deploy::int8_may_saturate(g)) r.notes.push_back(deploy::int8_saturation_note());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace qnas::eval
