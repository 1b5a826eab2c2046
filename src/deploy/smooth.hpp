#pragma once
// SmoothQuant's division in the deployed graph (REFERENCES.md 2): a layer
// whose weight columns were multiplied by s_j must read its input with
// channel j divided by s_j. Where nothing else reads the input and it comes
// from a LayerNorm (the paper's placement: qkv, fc1) or a layer with a
// positively homogeneous activation (identity, ReLU), possibly through
// attention (into V's channels: proj), the class token's selection or the
// mean over tokens (the classifier), the division folds into that node's
// output channels (exact on integer codes); otherwise an fp32 scale node
// runs before the layer's Quantize.

#include <ATen/core/Tensor.h>

#include <string>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// The fp32 value layer `layer`'s input is quantized from (through Quantize
/// and Dequantize nodes): what SmoothQuant's statistics are taken on.
int smoothing_source(const Graph& graph, const std::string& layer);

/// Whether divide_layer_input() on `layer` folds (no scale node).
bool input_division_folds(const Graph& graph, const std::string& layer);

/// Divides input channel j of layer `layer` by s_j (s: [C], > 0). Returns
/// true when it folded the division (see above; a layer on a per-tensor grid,
/// which would become per channel, takes none), false when it inserted a
/// scale node. The graph needs calibrating
/// afterwards.
bool divide_layer_input(Graph& graph, const std::string& layer, const at::Tensor& s);

}  // namespace qnas::deploy
