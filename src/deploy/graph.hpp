#pragma once
// The deployed form of a subnet as a small dataflow graph: what runs, at which
// precision, with which quantization parameters. One graph feeds three
// consumers, so they cannot disagree about where tensors are quantized:
//   - the simulator (fake quantization in fp32; calibration; the evaluator's
//     top-1),
//   - the int8 runtime (LibTorch's quantized ops on the ONEDNN engine),
//   - the exporters.
//
// Precision rules, from each compressible layer's policy (weight_bits W,
// act_bits A):
//   W <= 8, A = 8   the layer runs on an int8 kernel: quint8 input, qint8
//                   per-channel weights (codes of W bits widened to int8,
//                   exact), quint8 output with its own calibrated parameters;
//                   ReLU is fused, h-swish / h-sigmoid follow as quantized ops.
//   W = 32, A = 8   fp32 kernel on the quantized-then-dequantized input.
//   W <= 8, A = 32  fp32 kernel on weights dequantized at load time.
//   W = 32, A = 32  fp32.
//   dynamic         (policy param, linear only) int8 weights, the fp32 input
//                   quantized per call from its min/max; fp32 output.
// Residual adds, SE gating and global pooling run quantized when all their
// inputs are quantized, in fp32 otherwise. A linear on tokens (N,T,C) runs
// per token, on quantized::linear when int8 (faster there than the 1x1
// convolution the 2-D linears use). GELU after an int8 linear runs on its
// quantized output and keeps that grid (a 256-entry table). The other
// transformer ops (tokens, embed, LayerNorm, attention, token mean, class
// token) run in fp32 on fp32 inputs: their inputs are the fp32 residual
// stream or attention's fp32 softmax arithmetic. Quantize / Dequantize nodes sit
// only where precision changes between neighbours. SmoothQuant layers divide
// their input channels by their smoothing factors: folded into the producing
// layer where that is exact, else by an fp32 scale node before the Quantize.

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "src/quant/gptq.hpp"
#include "src/quant/grid.hpp"
#include "src/quant/policy.hpp"
#include "src/deploy/graph_names.hpp"
#include "supernet/ops.hpp"

namespace qnas::supernet {
class SubnetImpl;
}

namespace qnas::deploy {

/// Codes of a dynamic linear's input: 7 bits (reduce_range, PyTorch's own
/// choice for dynamic Linear). The per-call min/max spreads the input over
/// the whole range, where 8-bit codes saturate the int16 pair sums of x86
/// kernels without VNNI; 7-bit codes cannot, so the simulation, the int8
/// runtime and the TorchScript export agree on every CPU.
constexpr int kDynamicInputBits = 7;

/// Per-tensor affine parameters of a quint8 tensor.
struct QParams {
  double scale = 1.0;
  int64_t zero_point = 0;
};


struct Value {
  std::string name;
  bool quantized = false;  // quint8 at run time; fake-quantized in simulation
  QSource qsource = QSource::kObserved;
  QParams q;               // valid once calibrated
};

/// Every node kind, in enum order.
std::array<OpKind, kOpKindCount> all_op_kinds();

struct Node {
  OpKind kind = OpKind::kConv;
  std::string name;  // the layer for conv/linear ("s0.b1.pw1"), else descriptive
  std::vector<int> inputs;
  int output = -1;
  supernet::Act act = supernet::Act::kNone;  // kAct: the function; conv/linear: fused

  // conv / linear only
  bool int8 = false;         // runs on an int8 kernel
  // Dynamic activation quantization (linear only): fp32 in and out, the input
  // quantized per call from its own min/max on kDynamicInputBits
  // (quantized::linear_dynamic).
  bool dynamic = false;
  int weight_bits = 32;
  quant::LayerPolicy policy; // the layer's policy: method and its parameters
  int64_t stride = 1, padding = 0, groups = 1;  // conv: zero padding on each side
  at::Tensor weight;         // fp32 values computed with (dequantized codes when weight_bits < 32)
  at::Tensor bias;           // fp32, BN folded in
  at::Tensor weight_codes;   // integer codes when weight_bits < 32 (int8; int32 on a general grid)
  at::Tensor weight_scales;  // fp64: per output channel, or [out, groups] on a general grid
  // A general grid (asymmetric, grouped, decoupleQ's free offsets): w = codes * s + z
  // per (output channel, group of weight_group input columns). Such layers run
  // on fp32 kernels with the dequantized weight; undefined when the grid is
  // symmetric per channel.
  at::Tensor weight_zeros;   // fp64 [out, groups]
  int64_t weight_group = 0;

  at::Tensor channel_scale;  // kScale only: fp32 [1, C, 1, 1] or [1, C], broadcast over the input

  // kEmbed: weight = positional embedding (T x C), bias = class token (C;
  // undefined with mean pooling). kLayerNorm: weight = gamma, bias = beta.
  // kAttention: heads and head_dim.
  int64_t heads = 0, head_dim = 0;

  bool has_weight() const { return kind == OpKind::kConv || kind == OpKind::kLinear; }
  /// An fp32 op with its own parameters in weight / bias (embed, LayerNorm).
  bool has_params() const { return kind == OpKind::kEmbed || kind == OpKind::kLayerNorm; }
  /// A Quantize or Dequantize node: a precision change between neighbours.
  bool converts_precision() const { return kind == OpKind::kQuantize || kind == OpKind::kDequantize; }
  bool general_grid() const { return weight_zeros.defined(); }
};

/// What the graph's input is: images of this shape, normalised from raw
/// pixels in [0,1] as (x - mean[c]) / std[c], one value per channel. Exports
/// fold the normalisation in.
struct InputDesc {
  int64_t channels = 1, height = 28, width = 28;
  std::vector<double> mean{0.0}, std{1.0};

  /// [1, C, 1, 1] float32: how the normalisation is applied everywhere.
  at::Tensor mean_tensor() const;
  at::Tensor std_tensor() const;
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;  // in execution order
  InputDesc input_desc;
  int input = 0;            // normalised images, N x C x H x W fp32
  int output = -1;          // logits, fp32
  bool calibrated = false;

  /// For each node, the values no later node reads (freed after it runs, so
  /// a forward pass holds only live activations).
  std::vector<std::vector<int>> dead_after() const;

  /// The rank of each value (4: images, 3: tokens, 2: vectors), from the
  /// node kinds.
  std::vector<int> ranks() const;

  /// Bytes an export holds: weights packed at their bit-width, fp32
  /// per-channel scales of quantized weights (an fp32 scale and offset per
  /// group on a general grid), fp32 biases, fp32 factors of scale nodes and
  /// parameters of embed and LayerNorm nodes, and
  /// an fp32 scale + uint8 zero point per quantized value with its own
  /// parameters.
  int64_t model_bytes() const;

  /// Quantized values that store their own activation parameters (calibrated
  /// ranges; those taking their input's grid or a fixed one store none).
  int64_t own_act_params() const;
};

/// Builds the graph of a BN-folded subnet from its spec's policies. Weights
/// are quantized here by round-to-nearest on each policy's grid (symmetric
/// per channel unless its `sym`/`group` parameters or method say otherwise);
/// gptq and decoupleq layers get their codes, smoothquant layers their
/// smoothing from compress_weights() (deploy/compress.hpp), activation
/// parameters from calibrate()
/// (deploy/simulate.hpp).
Graph build_graph(const supernet::SubnetImpl& subnet, const InputDesc& input = {});

/// The weight grid a policy asks for; throws naming the layer when its group
/// size does not divide the weight's input columns.
quant::GridSpec weight_grid_spec(const quant::LayerPolicy& policy, const at::Tensor& weight, const std::string& layer);

/// Stores w (the layer's fp32 weight) on a weight node quantized by
/// round-to-nearest on its policy's grid (as is below 32 bits).
void set_rtn_weight(Node& n, const at::Tensor& w);

/// A quantized weight node's codes (as a matrix) and grid: the inverse of
/// set_quantized_weight().
quant::QuantizedWeight quantized_weight(const Node& n);

/// Multiplies output channel i of a weight node by r_i > 0 (r: [out]): the
/// codes stay, the scales and offsets (rounded to fp32), the weight and the
/// bias scale with it. Exact on the integers, which is what lets SmoothQuant
/// fold its division into a producing layer. On a LayerNorm node it scales
/// the affine (gamma and beta).
void scale_output_channels(Node& n, const at::Tensor& r);

/// Stores codes and grid on a weight node (`shape`: the weight's) and the
/// dequantized weight it computes with; scales and offsets rounded to fp32.
void set_quantized_weight(Node& n, const quant::QuantizedWeight& q, at::IntArrayRef shape);

/// An int8 layer's accumulator scales s_in * s_w per output channel (fp32):
/// the grid its int32 bias lives on.
at::Tensor accumulator_scales(const Node& n, const QParams& input);

/// round(bias / acc_scale) as int32 (the stored codes of an int8 layer's bias).
at::Tensor bias_codes(const at::Tensor& bias, const at::Tensor& acc_scale);

/// (raw - mean[c]) / std[c] in fp32, as the dataset normalises.
at::Tensor normalize_input(const at::Tensor& raw, const InputDesc& input);

}  // namespace qnas::deploy
