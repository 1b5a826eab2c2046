#include "src/deploy/block_tune.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "src/core/error.hpp"
#include "src/core/rng.hpp"
#include "src/deploy/simulate.hpp"
#include "src/quant/grid.hpp"
#include "src/quant/hessian.hpp"

namespace qnas::deploy {

std::string block_of(const std::string& name) {
  const auto first = name.find('.');
  if (first == std::string::npos) return name;
  const auto second = name.find('.', first + 1);
  const bool in_stage = name[0] == 's' && name.size() > first + 1 && name[first + 1] == 'b';
  return in_stage ? name.substr(0, second) : name.substr(0, first);
}

namespace {

int tune_steps(const Node& n) { return int(n.policy.param("tune_steps", 100)); }

bool tuned(const Node& n) {
  return n.has_weight() && quant::method_traits(n.policy.method).tunes_blocks && tune_steps(n) > 0;
}

// A block's nodes (indices, in order) and the values that cross its border.
struct Block {
  std::string name;
  std::vector<size_t> nodes;
  std::vector<int> inputs, outputs;
};

Block block_named(const Graph& g, const std::string& name) {
  Block b{name, {}, {}, {}};
  std::set<int> produced;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (block_of(g.nodes[k].name) == name) {
      b.nodes.push_back(k);
      produced.insert(g.nodes[k].output);
    }
  std::set<int> inputs, outputs;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const bool inside = block_of(g.nodes[k].name) == name;
    for (int v : g.nodes[k].inputs) {
      if (inside && !produced.count(v)) inputs.insert(v);
      if (!inside && produced.count(v)) outputs.insert(v);
    }
  }
  if (produced.count(g.output)) outputs.insert(g.output);
  b.inputs.assign(inputs.begin(), inputs.end());
  b.outputs.assign(outputs.begin(), outputs.end());
  return b;
}

// The trainable float parts of one decoupleq layer.
struct FloatParts {
  size_t node;
  at::Tensor scale, zero, bias;  // leaves with gradients; fp32
  at::Tensor codes;              // [out, cols] fp32, frozen
};

at::Tensor dequantized(const FloatParts& p, const Node& n) {
  const int64_t group = n.weight_group;
  const auto w = p.codes * p.scale.repeat_interleave(group, 1) + p.zero.repeat_interleave(group, 1);
  return w.reshape(n.weight.sizes());
}

// The block's outputs on `in` (one tensor per block input). `parts` replace
// the weights of their layers; `reference` runs the fp32 block instead
// (fp32 weights, no activation quantization).
std::vector<at::Tensor> run_block(const Graph& g, const Block& b, const std::vector<at::Tensor>& in,
                                  const std::vector<FloatParts>& parts,
                                  const std::map<std::string, std::pair<at::Tensor, at::Tensor>>* reference) {
  std::map<int, at::Tensor> vals;
  for (size_t i = 0; i < b.inputs.size(); ++i) vals[b.inputs[i]] = in[i];
  std::vector<at::Tensor> args;
  for (size_t k : b.nodes) {
    Node n = g.nodes[k];
    args.clear();
    for (int v : n.inputs) args.push_back(vals.at(v));
    if (reference && n.has_weight()) {
      const auto& [w, bias] = reference->at(n.name);
      n.weight = w, n.bias = bias;
    }
    for (const auto& p : parts)
      if (p.node == k && !reference) n.weight = dequantized(p, n), n.bias = p.bias;
    const auto y = run_fp32_node(n, args);
    vals[n.output] = reference ? y : as_simulated(g, n, y);
  }
  std::vector<at::Tensor> out;
  for (int v : b.outputs) out.push_back(vals.at(v));
  return out;
}

double relative_mse(const std::vector<at::Tensor>& y, const std::vector<at::Tensor>& t, at::Tensor* loss = nullptr) {
  at::Tensor total = at::zeros({}, at::kFloat);
  for (size_t i = 0; i < y.size(); ++i)
    total = total + (y[i] - t[i]).pow(2).mean() / t[i].pow(2).mean().clamp_min(1e-12);
  if (loss) *loss = total;
  return total.item<double>();
}

// The block's inputs over all images, as the current graph produces them.
std::vector<at::Tensor> block_inputs(const Graph& g, const Block& b, const at::Tensor& images, int64_t batch_size) {
  std::map<int, std::vector<at::Tensor>> parts;
  visit_values(g, images, batch_size, [&](int v, const at::Tensor& x) {
    if (std::find(b.inputs.begin(), b.inputs.end(), v) != b.inputs.end()) parts[v].push_back(x.clone());
  });
  std::vector<at::Tensor> out;
  for (int v : b.inputs) out.push_back(at::cat(parts.at(v)).clone());  // a normal tensor, not an inference one
  return out;
}

std::vector<FloatParts> float_parts(const Graph& g, const Block& b) {
  std::vector<FloatParts> parts;
  for (size_t k : b.nodes) {
    const Node& n = g.nodes[k];
    if (!tuned(n)) continue;
    QNAS_CHECK(n.general_grid(), "decoupleq stage two: layer '", n.name, "' has no scales and offsets to tune");
    parts.push_back({k, n.weight_scales.to(at::kFloat).clone().requires_grad_(),
                     n.weight_zeros.to(at::kFloat).clone().requires_grad_(), n.bias.clone().requires_grad_(),
                     quant::as_matrix(n.weight_codes).to(at::kFloat)});
  }
  return parts;
}

struct Adam {
  std::vector<at::Tensor> params, m, v;
  double lr, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  int t = 0;
  void step() {
    ++t;
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& grad = params[i].grad();
      if (!grad.defined()) continue;
      m[i].mul_(b1).add_(grad, 1 - b1);
      v[i].mul_(b2).addcmul_(grad, grad, 1 - b2);
      const double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
      params[i].sub_(lr / c1 * m[i] / ((v[i] / c2).sqrt() + eps));
      params[i].mutable_grad().zero_();
    }
  }
};

BlockTune tune_block(Graph& g, const Block& b, const std::map<std::string, std::pair<at::Tensor, at::Tensor>>& fp32,
                     const at::Tensor& images, int64_t batch_size, core::Rng& rng) {
  auto parts = float_parts(g, b);
  const Node& first = g.nodes[parts.front().node];
  BlockTune r{b.name, 0, 0, tune_steps(first), false};
  const auto inputs = block_inputs(g, b, images, batch_size);
  std::vector<at::Tensor> targets;
  {
    at::NoGradGuard no_grad;
    targets = run_block(g, b, inputs, parts, &fp32);
    r.loss_before = relative_mse(run_block(g, b, inputs, parts, nullptr), targets);
  }
  Adam adam{{}, {}, {}, first.policy.param("tune_lr", 1e-4)};
  for (auto& p : parts)
    for (auto* t : {&p.scale, &p.zero, &p.bias}) {
      adam.params.push_back(*t);
      adam.m.push_back(at::zeros_like(*t));
      adam.v.push_back(at::zeros_like(*t));
    }
  const int64_t n = inputs.front().size(0), batch = std::min<int64_t>(32, n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (int step = 0; step < r.steps; ++step) {
    for (int64_t i = 0; i < batch; ++i)  // a seeded random batch: partial Fisher-Yates
      std::swap(order[size_t(i)], order[size_t(i + core::uniform_index(rng, n - i))]);
    const auto idx = at::tensor(std::vector<int64_t>(order.begin(), order.begin() + batch), at::kLong);
    std::vector<at::Tensor> x, t;
    for (const auto& in : inputs) x.push_back(in.index_select(0, idx));
    for (const auto& tg : targets) t.push_back(tg.index_select(0, idx));
    at::Tensor loss;
    relative_mse(run_block(g, b, x, parts, nullptr), t, &loss);
    loss.backward();
    adam.step();
  }
  {
    at::NoGradGuard no_grad;
    r.loss_after = relative_mse(run_block(g, b, inputs, parts, nullptr), targets);
  }
  r.kept = r.loss_after < r.loss_before;
  if (!r.kept) return r;
  for (const auto& p : parts) {
    Node& node = g.nodes[p.node];
    auto q = quantized_weight(node);
    q.grid.scale = p.scale.detach().to(at::kDouble);
    q.grid.zero = p.zero.detach().to(at::kDouble);
    set_quantized_weight(node, q, node.weight.sizes().vec());
    node.bias = p.bias.detach().clone();
  }
  return r;
}

}  // namespace

std::vector<BlockTune> tune_blocks(Graph& g, const std::map<std::string, std::pair<at::Tensor, at::Tensor>>& fp32,
                                   const at::Tensor& images, int64_t batch_size, uint64_t seed) {
  std::vector<std::string> blocks;
  for (const auto& n : g.nodes)
    if (tuned(n) && std::find(blocks.begin(), blocks.end(), block_of(n.name)) == blocks.end())
      blocks.push_back(block_of(n.name));
  core::Rng rng(seed);
  std::vector<BlockTune> out;
  for (const auto& name : blocks) out.push_back(tune_block(g, block_named(g, name), fp32, images, batch_size, rng));
  return out;
}

}  // namespace qnas::deploy
