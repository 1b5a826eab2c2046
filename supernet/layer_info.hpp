#pragma once
// What one layer of an extracted subnet costs: shapes, the spatial size it
// runs at, and its policy. Metrics (params, MACs, BOPs, model_bytes) are
// computed from a list of these (src/eval/metrics.hpp). Plain data.

#include <cstdint>
#include <string>

#include "src/quant/policy.hpp"

namespace qnas::supernet {

struct LayerInfo {
  std::string name;
  // conv | dwconv | linear | se (squeeze-excitation 1x1, kept fp32), and the
  // fp32 parts of a transformer that are no compressible layer:
  //   attention   weightless matmuls QK^T and AV: in_channels = heads *
  //               head_dim, out_h = tokens
  //   layer_norm  weight_numel gamma, bias_numel beta (C each)
  //   embed       weight_numel the positional embedding (T x C), bias_numel
  //               the class token (C, 0 with mean pooling)
  std::string kind;
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel = 1, stride = 1, groups = 1;
  int64_t out_h = 1, out_w = 1;
  int64_t weight_numel = 0;
  int64_t bias_numel = 0;     // after BN folding every conv carries a bias
  bool compressible = true;   // false: no policy, always fp32
  quant::LayerPolicy policy;  // fp32 when not compressible

  /// Multiply-accumulates of one image through this layer (LayerNorm's and
  /// the embedding's few elementwise operations are none).
  int64_t macs() const {
    if (kind == "attention") return 2 * out_h * out_h * in_channels;  // QK^T and AV: tokens^2 x heads * head_dim each
    if (kind == "layer_norm" || kind == "embed") return 0;
    return out_channels * (in_channels / groups) * kernel * kernel * out_h * out_w;
  }
};

}  // namespace qnas::supernet
