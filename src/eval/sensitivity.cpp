#include "src/eval/sensitivity.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "src/core/error.hpp"
#include "src/core/progress.hpp"
#include "src/core/table.hpp"
#include "src/core/task_queue.hpp"
#include "src/deploy/sensitivity.hpp"
#include "src/deploy/simulate.hpp"

namespace qnas::eval {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

quant::LayerPolicy bits_policy(int weight_bits, int act_bits) {
  quant::LayerPolicy p;
  p.weight_bits = weight_bits;
  p.act_bits = act_bits;
  return p;
}

void check_candidates(std::vector<int>& weight_bits, int act_bits) {
  QNAS_CHECK(!weight_bits.empty(), "sensitivity: no candidate weight bit-widths; expected some of 2, 3, 4, 8");
  std::sort(weight_bits.begin(), weight_bits.end());
  weight_bits.erase(std::unique(weight_bits.begin(), weight_bits.end()), weight_bits.end());
  for (int b : weight_bits) quant::check_policy(bits_policy(b, act_bits), "sensitivity");
  QNAS_CHECK(weight_bits.back() <= 8, "sensitivity: candidate weight bits ", weight_bits.back(),
             "; expected widths up to 8 (fp32 layers have nothing to measure)");
}

// The subnet's current layers with every compressible one at `policy`.
std::vector<supernet::LayerInfo> with_policy(std::vector<supernet::LayerInfo> layers, const quant::LayerPolicy& policy) {
  for (auto& l : layers)
    if (l.compressible) l.policy = policy;
  return layers;
}

// What one layer adds to the budget's metric at its policy.
double layer_cost(const supernet::LayerInfo& l, const std::string& metric) {
  if (metric == "bops") return double(layer_bops(l));
  return double(quant::stored_weight_bytes(l.weight_numel, l.out_channels, l.policy));
}

}  // namespace

SensitivityReport measure_sensitivity(const Evaluator& evaluator, const supernet::SubnetSpec& spec,
                                      std::vector<int> weight_bits, int act_bits) {
  check_candidates(weight_bits, act_bits);
  SensitivityReport r;
  r.spec = supernet::with_uniform_policy(spec, {});
  auto start = std::chrono::steady_clock::now();
  auto p = evaluator.prepare(r.spec);
  r.layers = p.subnet->layer_infos();
  r.images = evaluator.calibration_images().size(0);
  r.prepare_seconds = seconds_since(start);
  for (int b : weight_bits) {
    start = std::chrono::steady_clock::now();
    SensitivityPass pass;
    pass.weight_bits = b;
    pass.act_bits = act_bits;
    p.subnet->set_policies(supernet::with_uniform_policy(r.spec, bits_policy(b, act_bits)).policy);
    const auto quantized = evaluator.calibrated_graph(*p.subnet);
    pass.layers = deploy::measure_sensitivity(p.graph, quantized, evaluator.calibration_images(),
                                              evaluator.config().eval.batch_size);
    pass.model_bytes = double(quantized.model_bytes());
    pass.seconds = seconds_since(start);
    std::fprintf(stderr, "sensitivity: w%da%d pass over %lld images, %zu layers, %.1fs\n", b, act_bits,
                 static_cast<long long>(r.images), pass.layers.size(), pass.seconds);
    r.passes.push_back(std::move(pass));
  }
  return r;
}

MixedPrecision allocate_mixed(const SensitivityReport& report, const Budget& budget) {
  QNAS_CHECK(!report.passes.empty(), "mixed precision: a sensitivity report without passes");
  QNAS_CHECK(budget.metric == "model_bytes" || budget.metric == "bops", "mixed precision: budget metric '",
             budget.metric, "'; expected model_bytes or bops");
  std::map<std::string, supernet::LayerInfo> info;
  for (const auto& l : report.layers) info[l.name] = l;
  const auto& top = report.passes.back();
  std::vector<quant::AllocationLayer> layers;
  double top_cost = 0;
  for (size_t i = 0; i < top.layers.size(); ++i) {
    quant::AllocationLayer a;
    a.layer = top.layers[i].layer;
    for (const auto& pass : report.passes) {
      auto l = info.at(a.layer);
      l.policy = bits_policy(pass.weight_bits, pass.act_bits);
      a.bits.push_back(pass.weight_bits);
      a.cost.push_back(layer_cost(l, budget.metric));
      a.sensitivity.push_back(pass.layers.at(i).score);
    }
    top_cost += a.cost.back();
    layers.push_back(std::move(a));
  }
  MixedPrecision m;
  const double top_total = budget.metric == "bops"
                               ? double(total_bops(with_policy(report.layers, bits_policy(top.weight_bits, top.act_bits))))
                               : top.model_bytes;
  m.fixed = top_total - top_cost;
  double lowest = m.fixed;
  for (const auto& l : layers) lowest += l.cost.front();
  QNAS_CHECK(budget.value >= lowest, "mixed precision: budget ", budget.metric, " <= ", budget.value,
             " is below the smallest reachable ", lowest, " (every layer at w", report.passes.front().weight_bits,
             "); expected a larger budget");
  m.allocation = quant::allocate_bits(layers, budget.value - m.fixed);
  m.spec = report.spec;
  for (size_t i = 0; i < layers.size(); ++i)
    m.spec.policy.at(layers[i].layer) = bits_policy(m.allocation.bits[i], top.act_bits);
  return m;
}

namespace {

// The fp32 architecture of `spec`, prepared once (BN recalibrated, folded);
// top-1 of its graph, and of the graph with one layer at `policy`.
class LayerAlone {
 public:
  LayerAlone(const Evaluator& evaluator, const supernet::SubnetSpec& spec, const quant::LayerPolicy& policy,
             const std::string& split, int64_t max_images)
      : evaluator_(evaluator),
        fp32_(supernet::with_uniform_policy(spec, {})),
        policy_(policy),
        prepared_(evaluator.prepare(fp32_)),
        images_(evaluator.split(split).first(max_images)) {}

  double fp32_top1() const { return top1_of(prepared_.graph); }

  std::vector<std::string> layers() const {
    std::vector<std::string> out;
    for (const auto& l : prepared_.subnet->layer_infos())
      if (l.compressible) out.push_back(l.name);
    return out;
  }

  double top1_alone(const std::string& layer) {
    auto alone = fp32_.policy;
    QNAS_CHECK(alone.count(layer), "sensitivity check: no layer ", layer, " in the subnet");
    alone.at(layer) = policy_;
    prepared_.subnet->set_policies(alone);
    return top1_of(evaluator_.calibrated_graph(*prepared_.subnet));
  }

 private:
  double top1_of(const deploy::Graph& g) const {
    return top1([&](const at::Tensor& x) { return deploy::simulate(g, x); }, images_,
                evaluator_.config().eval.batch_size);
  }

  const Evaluator& evaluator_;
  supernet::SubnetSpec fp32_;
  quant::LayerPolicy policy_;
  Prepared prepared_;
  core::Split images_;
};

}  // namespace

LayerDrops single_layer_drops(const Evaluator& evaluator, const supernet::SubnetSpec& spec,
                              const quant::LayerPolicy& policy, const std::string& split, int64_t max_images,
                              core::TaskQueue* queue) {
  LayerAlone alone(evaluator, spec, policy, split, max_images);
  LayerDrops d;
  d.fp32_top1 = alone.fp32_top1();
  d.layers = alone.layers();
  core::Progress progress("sensitivity check", int64_t(d.layers.size()), "layer");
  const auto record = [&](size_t i, double top1) {
    d.drops.push_back(d.fp32_top1 - top1);
    progress.update(int64_t(i) + 1, int64_t(i) + 1, d.layers[i]);
  };
  if (queue)
    queue->run(d.layers, [&](size_t i, const core::TaskResult& r) { record(i, std::stod(r.value)); });
  else
    for (size_t i = 0; i < d.layers.size(); ++i) record(i, alone.top1_alone(d.layers[i]));
  progress.finish();
  return d;
}

void serve_layer_drops(core::TaskQueue& queue, const Evaluator& evaluator, const supernet::SubnetSpec& spec,
                       const quant::LayerPolicy& policy, const std::string& split, int64_t max_images) {
  LayerAlone alone(evaluator, spec, policy, split, max_images);
  queue.serve([&](const std::string& layer) { return core::shortest(alone.top1_alone(layer)); });
}

}  // namespace qnas::eval
