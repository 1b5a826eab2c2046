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
  int v = g.nodes[layer_index(g, layer)].inputs[0];
  for (int p = producer(g, v); p >= 0 && g.nodes[size_t(p)].converts_precision(); p = producer(g, v))
    v = g.nodes[size_t(p)].inputs[0];
  return v;
}

bool divide_layer_input(Graph& g, const std::string& layer, const at::Tensor& s) {
  const size_t k = layer_index(g, layer);
  QNAS_CHECK(s.dim() == 1 && (s > 0).all().item<bool>(), "smoothquant: layer '", layer,
             "': smoothing factors must be a positive vector");
  const int u = smoothing_source(g, layer);
  const at::Tensor inverse = 1.0 / s.to(at::kDouble);
  const int p = producer(g, u);
  std::vector<size_t> readers;
  collect_readers(g, u, readers);
  g.calibrated = false;
  // The division folds into a sole producer whose output channels scale
  // exactly: a layer with a positively homogeneous activation (a per-tensor
  // one would leave its grid per channel: it keeps its grid and gets a scale
  // node), or LayerNorm's affine, SmoothQuant's canonical placement.
  if (p >= 0 && readers == std::vector<size_t>{k}) {
    auto& producer = g.nodes[size_t(p)];
    const bool foldable_layer = producer.has_weight() && positively_homogeneous(producer.act) &&
                                producer.policy.param("per_tensor", 0) != 1;
    if (foldable_layer || producer.kind == OpKind::kLayerNorm) {
      scale_output_channels(producer, inverse);
      return true;
    }
  }
  insert_scale_node(g, k, u, inverse);
  return false;
}

}  // namespace qnas::deploy
