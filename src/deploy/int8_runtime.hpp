#pragma once
// The deployed graph on real kernels: int8 nodes through LibTorch's quantized
// ops on the ONEDNN engine (prepacked qint8 per-channel weights, quint8
// activations), fp32 nodes in fp32. Built once from a calibrated graph;
// forward() is what latency is measured on.

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// Selects the ONEDNN quantized engine (the only one with fast x86 kernels in
/// LibTorch 1.13); throws when this LibTorch lacks it.
void use_onednn_engine();

/// True when this CPU's int8 kernels accumulate u8 x s8 products exactly
/// (AVX512-VNNI or AVX-VNNI, which AMX CPUs also have). Without VNNI,
/// oneDNN's x86 kernels add pairs of products in int16 first (vpmaddubsw),
/// which saturates once activations near 255 meet weight codes beyond
/// +-63 (oneDNN's documented int8 nuance); 4-bit weights never do.
bool int8_accumulation_exact();

/// True when `g` has an int8 layer whose weight codes exceed +-63 and this
/// CPU's int8 kernels may saturate on it: its int8 outputs can then differ
/// from the simulation (latency is unaffected).
bool int8_may_saturate(const Graph& g);

/// What int8_may_saturate() means, for warnings and notes.
const char* int8_saturation_note();

class Int8Model {
 public:
  /// Prepacks every int8 layer; `graph` must be calibrated.
  explicit Int8Model(const Graph& graph);

  /// Logits (fp32) of normalised images (N x C x H x W, fp32).
  at::Tensor forward(const at::Tensor& x) const;

  struct NodeTime {
    std::string node;    // "<name> (<kind>, int8|fp32)"
    double ms = 0;       // mean over the runs
    std::string layout;  // of the node's output: nhwc, nchw, tokens or 2d
  };
  /// Mean milliseconds per node over `runs` forward passes (after one
  /// untimed pass), in execution order: where the time goes.
  std::vector<NodeTime> profile(const at::Tensor& x, int runs) const;

  int int8_layers() const { return int8_layers_; }
  int fp32_layers() const { return fp32_layers_; }

  using Step = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

 private:
  struct Op {
    Step step;
    std::string name;  // "<node name> (<kind>, int8|fp32)"
    std::vector<int> inputs;
    int output;
    std::vector<int> dead_after;  // values freed once this op has run
  };
  using Ops = std::vector<Op>;

  /// The ops prepacked for this input's batch size at the current thread
  /// count. LibTorch 1.13's ONEDNN packed params cache the primitive of their
  /// first call only; a later shape falls back to building primitives on
  /// every call (2-3x slower), so each (batch, threads) gets its own packing.
  const Ops& ops_for(const at::Tensor& x) const;
  Ops build_ops() const;

  template <class Timer>
  at::Tensor run(const Ops& ops, const at::Tensor& x, Timer timer) const;

  Graph graph_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int64_t, int>, std::unique_ptr<const Ops>> ops_by_shape_;
  int int8_layers_ = 0, fp32_layers_ = 0;
};

}  // namespace qnas::deploy
