#include "src/deploy/smooth.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "src/core/error.hpp"

namespace qnas::deploy {

namespace {

// The index of the node that produces value v; -1 for the graph input.
int producer(const Graph& g, int v) {
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (g.nodes[k].output == v) return int(k);
  return -1;
}

size_t layer_index(const Graph& g, const std::string& layer) {
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (g.nodes[k].has_weight() && g.nodes[k].name == layer) return k;
  QNAS_THROW("smoothquant: the graph has no layer '", layer, "'");
}

// Nodes that read v, directly or through Quantize / Dequantize nodes, other
// than those conversions themselves.
void collect_readers(const Graph& g, int v, std::vector<size_t>& out) {
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const auto& n = g.nodes[k];
    if (std::find(n.inputs.begin(), n.inputs.end(), v) == n.inputs.end()) continue;
    if (n.converts_precision())
      collect_readers(g, n.output, out);
    else
      out.push_back(k);
  }
}

// f(x / s) = f(x) / s for s > 0.
bool positively_homogeneous(supernet::Act act) { return act == supernet::Act::kNone || act == supernet::Act::kRelu; }

// A layer whose output channels scale exactly (a per-tensor grid would
// become per channel: such a layer keeps its grid).
bool foldable_layer(const Node& n) {
  return n.has_weight() && positively_homogeneous(n.act) && n.policy.param("per_tensor", 0) != 1;
}

bool sole_reader(const Graph& g, int v, size_t k) {
  std::vector<size_t> readers;
  collect_readers(g, v, readers);
  return readers == std::vector<size_t>{k};
}

// The fp32 value v is quantized from (through Quantize / Dequantize nodes).
int unconverted(const Graph& g, int v) {
  for (int p = producer(g, v); p >= 0 && g.nodes[size_t(p)].converts_precision(); p = producer(g, v))
    v = g.nodes[size_t(p)].inputs[0];
  return v;
}

// Where layer k's input division folds: the node whose output channels
// [offset, offset + C) take it, -1 when none does. Walks back through sole
// readers: a foldable layer or a LayerNorm ends the walk; the class token's
// selection and the mean over tokens keep channels; attention's output is
// linear in each channel of V (softmax(QK^T) V), the qkv output's last third.
struct FoldTarget {
  int node = -1;
  int64_t offset = 0;
};

FoldTarget fold_target(const Graph& g, size_t k) {
  size_t reader = k;
  int64_t offset = 0;
  for (int u = unconverted(g, g.nodes[k].inputs[0]);;) {
    const int p = producer(g, u);
    if (p < 0 || !sole_reader(g, u, reader)) return {};
    const Node& n = g.nodes[size_t(p)];
    if (foldable_layer(n) || n.kind == OpKind::kLayerNorm) return {p, offset};
    if (n.kind == OpKind::kAttention && offset == 0) offset = 2 * n.heads * n.head_dim;
    else if (n.kind != OpKind::kClassToken && n.kind != OpKind::kTokenMean) return {};
    reader = size_t(p);
    u = unconverted(g, n.inputs[0]);
  }
}

int add_value(Graph& g, const std::string& name, bool quantized) {
  Value v;
  v.name = name;
  v.quantized = quantized;
  g.values.push_back(v);
  return int(g.values.size()) - 1;
}

// Inserts a node before position `at` writing a new value; returns the value.
int insert_node(Graph& g, size_t at, Node n, bool quantized) {
  n.output = add_value(g, n.name, quantized);
  const int out = n.output;
  g.nodes.insert(g.nodes.begin() + std::ptrdiff_t(at), std::move(n));
  return out;
}

Node simple_node(OpKind kind, const std::string& name, int input) {
  Node n;
  n.kind = kind;
  n.name = name;
  n.inputs = {input};
  return n;
}

// Conversion nodes nobody reads any more (the layer's old input chain).
// Their values stay in the table, unread and no longer counted as quantized.
void erase_unread_conversions(Graph& g) {
  for (bool erased = true; erased;) {
    erased = false;
    for (size_t k = 0; k < g.nodes.size() && !erased; ++k) {
      const int out = g.nodes[k].output;
      if (!g.nodes[k].converts_precision() || out == g.output) continue;
      const bool read = std::any_of(g.nodes.begin(), g.nodes.end(), [&](const Node& n) {
        return std::find(n.inputs.begin(), n.inputs.end(), out) != n.inputs.end();
      });
      if (read) continue;
      g.values[size_t(out)].quantized = false;
      g.nodes.erase(g.nodes.begin() + std::ptrdiff_t(k));
      erased = true;
    }
  }
}

// A new input chain for layer k in front of it: u -> [Dequantize] -> Scale
// -> [Quantize -> [Dequantize]] at the precision the layer reads.
void insert_scale_node(Graph& g, size_t k, int u, const at::Tensor& inverse) {
  const Node& layer = g.nodes[k];
  const std::string name = layer.name + ".smooth";
  const bool linear = layer.kind == OpKind::kLinear, quantized_input = layer.policy.quantizes_acts();
  const bool fp32_kernel = !layer.int8;
  Node scale = simple_node(OpKind::kScale, name, u);
  scale.channel_scale = (linear ? inverse.view({1, -1}) : inverse.view({1, -1, 1, 1})).to(at::kFloat).contiguous();
  size_t at = k;
  if (g.values[size_t(u)].quantized) scale.inputs[0] = insert_node(g, at++, simple_node(OpKind::kDequantize, name + ".dq", u), false);
  int in = insert_node(g, at++, std::move(scale), false);
  if (quantized_input) {
    in = insert_node(g, at++, simple_node(OpKind::kQuantize, name + ".q", in), true);
    if (fp32_kernel) in = insert_node(g, at++, simple_node(OpKind::kDequantize, name + ".q.dq", in), false);
  }
  g.nodes[at].inputs[0] = in;
  erase_unread_conversions(g);
}

}  // namespace

int smoothing_source(const Graph& g, const std::string& layer) {
  return unconverted(g, g.nodes[layer_index(g, layer)].inputs[0]);
}

bool input_division_folds(const Graph& g, const std::string& layer) {
  return fold_target(g, layer_index(g, layer)).node >= 0;
}

bool divide_layer_input(Graph& g, const std::string& layer, const at::Tensor& s) {
  const size_t k = layer_index(g, layer);
  QNAS_CHECK(s.dim() == 1 && (s > 0).all().item<bool>(), "smoothquant: layer '", layer,
             "': smoothing factors must be a positive vector");
  const at::Tensor inverse = 1.0 / s.to(at::kDouble);
  g.calibrated = false;
  const auto target = fold_target(g, k);
  if (target.node >= 0) {
    auto& n = g.nodes[size_t(target.node)];
    at::Tensor r = at::ones({n.weight.size(0)}, at::kDouble);
    r.narrow(0, target.offset, inverse.numel()).copy_(inverse);
    scale_output_channels(n, r);
    return true;
  }
  insert_scale_node(g, k, smoothing_source(g, layer), inverse);
  return false;
}

}  // namespace qnas::deploy
