#pragma once
// Cost metrics of a subnet, computed from its layer list as the deployed
// (BN-folded) form holds it. Plain functions, no LibTorch.
//
//   params      weights + biases (BN folded into a per-channel bias)
//   macs        multiply-accumulates of one image through conv/linear layers
//               (SE layers included; elementwise ops are not MACs)
//   bops        sum over layers of MACs * weight_bits * act_bits (fp32 = 32)
//   model_bytes what an export holds: each layer's weights and bias as
//               quant::stored_layer_bytes counts them (the deployed graph
//               counts its tensors with the same function), plus an fp32
//               scale + uint8 zero point per layer with a calibrated input.
//               The deployed graph counts those parameters per quantized
//               value instead, which its precision plan decides (an add's
//               output, a value two layers read), and SmoothQuant's scale
//               nodes where the division cannot be folded: a difference of a
//               few bytes per layer that tests/families pins exactly.
//
// A CP-factorized layer (admm_cp, cp_rtn on a dense conv or linear) counts
// as the layers it is deployed as (deployed_parts; deploy/factorize.hpp).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "supernet/layer_info.hpp"

namespace qnas::eval {

/// Named doubles; names are the CSV columns of DESIGN.md (top1, latency_ms,
/// model_bytes, params, macs, bops, ...).
using Metrics = std::map<std::string, double>;

/// The layers `layer` runs as: itself, or for a factorized one its rank-R
/// parts 1x1 Cin->R (at the input's resolution when a kxk conv follows),
/// depthwise kxk on R (kernel > 1 only; the layer's stride), 1x1 R->Cout.
/// Every part has a bias (zeros but the last) and its own quantized input.
std::vector<supernet::LayerInfo> deployed_parts(const supernet::LayerInfo& layer);

/// Multiply-accumulates of one image (sum over its parts).
int64_t layer_macs(const supernet::LayerInfo& layer);
int64_t layer_params(const supernet::LayerInfo& layer);
/// ceil(weight_numel * weight_bits / 8).
int64_t packed_weight_bytes(const supernet::LayerInfo& layer);
/// Packed weights plus their per-channel scales (when quantized).
int64_t weight_bytes(const supernet::LayerInfo& layer);
/// weight_bytes + fp32 bias + activation quantization parameters (sums over
/// its parts, as layer_bops, layer_macs and layer_params).
int64_t layer_bytes(const supernet::LayerInfo& layer);
int64_t layer_bops(const supernet::LayerInfo& layer);

int64_t total_params(const std::vector<supernet::LayerInfo>& layers);
int64_t total_macs(const std::vector<supernet::LayerInfo>& layers);
int64_t total_bops(const std::vector<supernet::LayerInfo>& layers);
int64_t model_bytes(const std::vector<supernet::LayerInfo>& layers);

/// params, macs, bops, model_bytes of a layer list.
Metrics cost_metrics(const std::vector<supernet::LayerInfo>& layers);

}  // namespace qnas::eval
