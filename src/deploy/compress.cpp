#include "src/deploy/compress.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "src/core/error.hpp"
#include "src/deploy/block_tune.hpp"
#include "src/deploy/factorize.hpp"
#include "src/deploy/simulate.hpp"
#include "src/deploy/smooth.hpp"
#include "src/quant/decoupleq.hpp"
#include "src/quant/gptq.hpp"
#include "src/quant/hessian.hpp"
#include "src/quant/smoothquant.hpp"
#include "supernet/subnet.hpp"

namespace qnas::deploy {

namespace {

// Layers whose method needs their inputs' Hessian (CP factorization needs
// none, but its report gives the output error, as every other method's).
bool uses_hessian(const Node& n) {
  return n.has_weight() && (quant::method_traits(n.policy.method).needs_hessian || factorizable(n));
}

bool uses_smoothing(const Node& n) { return n.has_weight() && quant::method_traits(n.policy.method).smooths_inputs; }

bool compressed(const Node& n) { return uses_hessian(n) || uses_smoothing(n); }

// Conv layers see many positions per image; a budget of samples per column
// of H keeps it well determined without paying for every position: a 7x7
// depthwise layer's H costs 49 x 49 multiply-adds per channel and sample.
quant::LayerShape shape_of(const Node& n, int64_t images, int64_t samples_per_column) {
  quant::LayerShape s;
  s.linear = n.kind == OpKind::kLinear;
  s.in_channels = s.linear ? n.weight.size(1) : n.weight.size(1) * n.groups;
  s.kernel = s.linear ? 1 : n.weight.size(-1);
  s.stride = n.stride;
  s.padding = n.padding;
  s.groups = n.groups;
  const int64_t cols = n.weight.numel() / n.weight.size(0);
  s.max_positions = std::clamp<int64_t>((samples_per_column * cols + images - 1) / images, 1, 64);
  return s;
}

// The layer's method on its fp32 weight (as a matrix) against H.
quant::QuantizedWeight run_method(const Node& n, const at::Tensor& w, const at::Tensor& h) {
  const auto& p = n.policy;
  const auto spec = weight_grid_spec(p, n.weight, n.name);
  if (p.method == "gptq") {
    quant::GptqOptions o;
    o.grid = spec;
    o.damp = p.param("damp", 0.01);
    o.act_order = p.param("act_order", 0) == 1;
    return quant::gptq(w, h, o);
  }
  quant::DecoupleqOptions o;
  o.bits = spec.bits;
  o.granularity = spec.granularity;
  o.group_size = spec.group_size;
  o.iterations = int(p.param("iterations", 4));
  return quant::decoupleq(w, h, o).weight;
}

// decoupleQ's block-wise second stage where layers ask for it; the report's
// errors then describe the tuned weights.
void second_stage(Graph& g, const std::map<std::string, const supernet::ConvUnitImpl*>& units,
                  const at::Tensor& images, int64_t batch_size, const std::map<std::string, at::Tensor>& h_of,
                  std::vector<LayerCompression>& report) {
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> fp32;
  for (const auto& [name, unit] : units)
    fp32[name] = {unit->weight.detach().to(at::kFloat), unit->bias.detach().to(at::kFloat)};
  const auto start = std::chrono::steady_clock::now();
  const auto blocks = tune_blocks(g, fp32, images, batch_size, 0x5eed);
  if (blocks.empty()) return;
  for (const auto& b : blocks)
    std::fprintf(stderr, "decoupleq stage two: %-10s loss %.4g -> %.4g after %d steps%s\n", b.block.c_str(),
                 b.loss_before, b.loss_after, b.steps, b.kept ? "" : " (not kept)");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& r : report) {
    if (!quant::method_traits(r.method).tunes_blocks) continue;
    const auto n = std::find_if(g.nodes.begin(), g.nodes.end(),
                                [&](const Node& m) { return m.has_weight() && m.name == r.layer; });
    const at::Tensor w = quant::as_matrix(units.at(r.layer)->weight.detach()).to(at::kDouble);
    r.error = quant::relative_output_error(w, quant::as_matrix(n->weight), h_of.at(r.layer));
    r.seconds += seconds / double(blocks.size());  // the stage's time, spread over its blocks' layers
  }
}

// SmoothQuant: every smoothed layer's weight first, then the divisions
// (which may fold into a layer smoothed itself: exact on its codes).
void smooth(Graph& g, const std::map<std::string, const supernet::ConvUnitImpl*>& units,
            const std::map<std::string, quant::ChannelAbsMax>& ranges) {
  std::vector<std::pair<std::string, at::Tensor>> factors;
  for (auto& n : g.nodes) {
    if (!uses_smoothing(n)) continue;
    const at::Tensor w = units.at(n.name)->weight.detach();
    const at::Tensor s = quant::smoothing_factors(ranges.at(n.name).amax(), w, n.groups, n.policy.param("alpha", 0.5));
    set_rtn_weight(n, quant::smooth_weight(w, s, n.groups));
    factors.emplace_back(n.name, s);
  }
  for (const auto& [layer, s] : factors) divide_layer_input(g, layer, s);
}

// calibrate() moved int8 layers' biases onto their accumulator grid, which
// depends on the weight scales: back to fp32 before the weights change. The
// inner parts of a factorized layer have no bias.
void restore_fp32_biases(Graph& g, const std::map<std::string, const supernet::ConvUnitImpl*>& units) {
  for (auto& n : g.nodes)
    if (n.has_weight() && units.count(n.name)) n.bias = units.at(n.name)->bias.detach().to(at::kFloat).contiguous();
}

// calibrate() without its rounding of the biases: the final calibration
// rounds each bias once.
void calibrate_keeping_biases(Graph& g, const at::Tensor& images, int64_t batch_size,
                              const quant::ActObserverSpec& observer) {
  std::vector<at::Tensor> biases;
  for (const auto& n : g.nodes) biases.push_back(n.bias);
  calibrate(g, images, batch_size, observer);
  for (size_t k = 0; k < g.nodes.size(); ++k) g.nodes[k].bias = biases[k];
}

}  // namespace

bool needs_compression(const Graph& graph) {
  return std::any_of(graph.nodes.begin(), graph.nodes.end(), compressed);
}

std::vector<LayerCompression> compress_weights(Graph& g, const supernet::SubnetImpl& subnet, const at::Tensor& images,
                                               const CompressSettings& cs) {
  QNAS_CHECK(cs.hessian_images > 0 && cs.samples_per_column > 0 && images.size(0) > 0, "compress: ", images.size(0),
             " calibration images, ", cs.hessian_images, " for the Hessians at ", cs.samples_per_column,
             " samples per column; expected at least one of each");
  const int64_t hessian_images = std::min(cs.hessian_images, images.size(0)), batch_size = cs.batch_size;
  std::map<std::string, const supernet::ConvUnitImpl*> units;
  for (const auto& u : subnet.units()) units[u->desc().name] = u.get();
  // The H of every layer that needs one, keyed by the value it reads; the
  // channel ranges of the values smoothquant layers read.
  std::map<size_t, quant::HessianAccumulator> hessians;
  std::map<std::string, quant::ChannelAbsMax> ranges;
  std::multimap<int, size_t> readers;
  std::multimap<int, std::string> smoothed_sources;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const auto& n = g.nodes[k];
    if (uses_smoothing(n)) smoothed_sources.emplace(smoothing_source(g, n.name), n.name);
    if (!uses_hessian(n)) continue;
    hessians.emplace(k, quant::HessianAccumulator(shape_of(n, hessian_images, cs.samples_per_column)));
    readers.emplace(n.inputs[0], k);
  }
  const auto calib = images.narrow(0, 0, hessian_images);
  visit_values(g, calib, batch_size, [&](int value, const at::Tensor& x) {
    const auto [first, last] = readers.equal_range(value);
    for (auto it = first; it != last; ++it) hessians.at(it->second).add(x);
    const auto [from, to] = smoothed_sources.equal_range(value);
    for (auto it = from; it != to; ++it) ranges[it->second].observe(x);
  });
  std::vector<LayerCompression> report;
  std::map<std::string, at::Tensor> h_of;  // per layer, for the errors after decoupleQ's second stage
  std::vector<std::pair<size_t, std::vector<Node>>> factorized;  // node index, its parts
  for (auto& [k, acc] : hessians) {
    Node& n = g.nodes[k];
    const auto unit = units.find(n.name);
    QNAS_CHECK(unit != units.end(), "compress: graph layer '", n.name, "' is not a unit of the subnet");
    const at::Tensor w = quant::as_matrix(unit->second->weight.detach()).to(at::kDouble);
    const at::Tensor h = h_of[n.name] = acc.mean();
    LayerCompression r{n.name, n.policy.method, n.weight_bits, int64_t(n.policy.param("group", 0))};
    r.rtn_error = quant::relative_output_error(w, quant::as_matrix(n.weight), h);  // the graph holds RTN weights
    const auto start = std::chrono::steady_clock::now();
    if (factorizable(n)) {
      auto f = factorize(n, unit->second->weight.detach());
      r.rank = f.rank;
      r.error = quant::relative_output_error(w, quant::as_matrix(f.weight), h);
      factorized.emplace_back(k, std::move(f.parts));
    } else {
      const std::vector<int64_t> shape = n.weight.sizes().vec();
      set_quantized_weight(n, run_method(n, w, h), shape);
      r.error = quant::relative_output_error(w, quant::as_matrix(n.weight), h);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.push_back(r);
  }
  std::map<std::string, BnAffine> bn;  // of the factorized layers that had a BN
  for (const auto& [k, parts] : factorized) {
    const auto* unit = units.at(parts.back().name);
    if (unit->folded_gamma.defined()) bn[parts.back().name] = {unit->folded_gamma, unit->folded_beta};
  }
  // From the last node back, so earlier indices stay valid.
  for (auto it = factorized.rbegin(); it != factorized.rend(); ++it) replace_with_parts(g, it->first, std::move(it->second));
  restore_fp32_biases(g, units);
  recalibrate_factorized_bn(g, bn, calib, batch_size);
  if (!factorized.empty()) calibrate_keeping_biases(g, images, batch_size, cs.act_observer);  // the values between the parts
  second_stage(g, units, calib, batch_size, h_of, report);
  smooth(g, units, ranges);
  calibrate(g, images, batch_size, cs.act_observer);
  return report;
}

}  // namespace qnas::deploy
