#pragma once
// SmoothQuant's division in the deployed graph (REFERENCES.md 2): a layer
// whose weight columns were multiplied by s_j must read its input with
// channel j divided by s_j. Where the input comes straight from one layer
// through a positively homogeneous activation (identity, ReLU) and nothing
// else reads it, the division folds into that layer's output channels
// (exact on its integer codes); otherwise an fp32 scale node runs before the
// layer's Quantize, as the paper does where no preceding affine exists.

#include <ATen/core/Tensor.h>

#include <string>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// The fp32 value layer `layer`'s input is quantized from (through Quantize
/// and Dequantize nodes): what SmoothQuant's statistics are taken on.
int smoothing_source(const Graph& graph, const std::string& layer);

/// Divides input channel j of layer `layer` by s_j (s: [C], > 0). Returns
/// true when it folded the division into the producing layer (not one on a
/// per-tensor grid, which would become per channel) or LayerNorm's affine,
/// false when it inserted a scale node. The graph needs calibrating
/// afterwards.
bool divide_layer_input(Graph& graph, const std::string& layer, const at::Tensor& s);

}  // namespace qnas::deploy
