#pragma once
// The graph in fp32 with fake quantization (quantize-dequantize) of every
// quantized value: what the evaluator measures top-1 on, and what the int8
// runtime must agree with. Calibration sets the quantized values' parameters.

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "src/deploy/graph.hpp"
#include "src/quant/act_observer.hpp"

namespace qnas::deploy {

/// One node in fp32 on its (dequantized) inputs.
at::Tensor run_fp32_node(const Node& node, const std::vector<at::Tensor>& inputs);

/// x as value v holds it: fake-quantized (straight-through gradient) when v
/// is quantized, else x itself.
at::Tensor as_held(const Value& v, const at::Tensor& x);

/// A node's output y as the simulation holds it: fake-quantized (with the
/// straight-through gradient) where its value is quantized.
at::Tensor as_simulated(const Graph& graph, const Node& node, const at::Tensor& y);

/// Logits of normalised images x (N x C x H x W); the graph must be calibrated.
at::Tensor simulate(const Graph& graph, const at::Tensor& x);

/// Runs the simulation over `images` in batches of `batch_size` and calls
/// visit(value id, tensor) for the input and every value a node produces, as
/// its consumers see it (fake-quantized where the value is quantized).
void visit_values(const Graph& graph, const at::Tensor& images, int64_t batch_size,
                  const std::function<void(int, const at::Tensor&)>& visit);

/// Runs the graph as calibrate() does (weights quantized, activations in
/// fp32) over `images` up to node `node` (the nodes before it) and calls
/// visit(its inputs) per batch.
void visit_inputs(const Graph& graph, size_t node, const at::Tensor& images, int64_t batch_size,
                  const std::function<void(const std::vector<at::Tensor>&)>& visit);

/// Calibration of every observed quantized value over `images` (weights
/// quantized, activations in fp32), in batches of `batch_size`, with the
/// observer's clipping (min/max by default; its bits are set to 8); sets each
/// value's parameters and marks the graph calibrated.
void calibrate(Graph& graph, const at::Tensor& images, int64_t batch_size, quant::ActObserverSpec observer = {});

}  // namespace qnas::deploy
