#pragma once
// The deployed graph on real kernels: int8 nodes through LibTorch's quantized
// ops on the ONEDNN engine (prepacked qint8 per-channel weights, quint8
// activations), fp32 nodes in fp32. Built once from a calibrated graph;
// forward() is what latency is measured on.

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// Selects the ONEDNN quantized engine (the only one with fast x86 kernels in
/// LibTorch 1.13); throws when this LibTorch lacks it.
void use_onednn_engine();

class Int8Model {
 public:
  /// Prepacks every int8 layer; `graph` must be calibrated.
  explicit Int8Model(const Graph& graph);

  /// Logits (fp32) of normalised images (N x C x H x W, fp32).
  at::Tensor forward(const at::Tensor& x) const;

  int int8_layers() const { return int8_layers_; }
  int fp32_layers() const { return fp32_layers_; }

  using Step = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

 private:
  struct Op {
    Step step;
    std::vector<int> inputs;
    int output;
    std::vector<int> dead_after;  // values freed once this op has run
  };
  std::vector<Op> ops_;
  size_t num_values_ = 0;
  int input_ = 0, output_ = 0;
  int int8_layers_ = 0, fp32_layers_ = 0;
};

}  // namespace qnas::deploy
