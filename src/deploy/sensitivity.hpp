#pragma once
// QuantuneV2's two inference passes: the fp32 graph and a quantized graph of
// the same subnet run on the same calibration images, batch by batch, and
// every quantized layer's local metrics are accumulated
// (quant/sensitivity.hpp says which and how they are scored).

#include <ATen/core/Tensor.h>

#include <vector>

#include "src/deploy/graph.hpp"
#include "src/quant/sensitivity.hpp"

namespace qnas::deploy {

/// Metrics of every layer the calibrated graph `quantized` quantizes
/// (weights or input), against the calibrated fp32 graph `reference` of the
/// same subnet (layers matched by name), over `images` in batches of
/// `batch_size`, scored (quant/sensitivity.hpp).
std::vector<quant::LayerSensitivity> measure_sensitivity(const Graph& reference, const Graph& quantized,
                                                         const at::Tensor& images, int64_t batch_size);

}  // namespace qnas::deploy
