#pragma once
// The deployed graph's enumerations and the names subnet.json writes for
// them, without LibTorch (the deployed-model checks and their fuzz target
// read the names).

#include <cstddef>

#include "supernet/acts.hpp"

namespace qnas::deploy {

/// Where a quantized value's parameters come from:
///   observed  calibrated (min/max over calibration images)
///   input     the same as the node's first input (global average pooling)
///   fixed     fixed by the op (h-sigmoid: scale 1/256, zero point 0)
#define QNAS_QSOURCES(X) X(kObserved, "observed") X(kInput, "input") X(kFixed, "fixed")
enum class QSource { QNAS_QSOURCES(QNAS_ENUM_VALUE) };
inline constexpr const char* kQSourceNames[] = {QNAS_QSOURCES(QNAS_ENUM_NAME)};
inline constexpr size_t kQSourceCount = sizeof(kQSourceNames) / sizeof(kQSourceNames[0]);

inline const char* qsource_name(QSource s) { return kQSourceNames[size_t(s)]; }

// The node kinds and their names, from one list (the enum and the names
// cannot disagree):
//   conv        conv2d with the node's stride, padding and groups, optional fused activation
//   linear      linear, optional fused activation
//   act         activation on its own (quantized h-swish / h-sigmoid; ReLU after an add)
//   add         residual add
//   mul         SE gating: x (N,C,H,W) * gate (N,C)
//   mean        global average pooling: (N,C,H,W) -> (N,C)
//   quantize    fp32 -> quint8
//   dequantize  quint8 -> fp32
//   scale       fp32 per-channel multiply (SmoothQuant's division where it cannot be folded)
//   tokens      (N,C,H,W) -> (N,H*W,C)
//   embed       [class token, tokens] + positional embedding
//   layer_norm  LayerNorm over the last axis
//   attention   multi-head self-attention on (N,T,3*heads*head_dim) projections -> (N,T,heads*head_dim)
//   token_mean  mean over tokens: (N,T,C) -> (N,C)
//   class_token the first token: (N,T,C) -> (N,C)
#define QNAS_OP_KINDS(X)                                                                                  \
  X(kConv, "conv") X(kLinear, "linear") X(kAct, "act") X(kAdd, "add") X(kMul, "mul") X(kMean, "mean")     \
  X(kQuantize, "quantize") X(kDequantize, "dequantize") X(kScale, "scale") X(kTokens, "tokens")           \
  X(kEmbed, "embed") X(kLayerNorm, "layer_norm") X(kAttention, "attention") X(kTokenMean, "token_mean") \
  X(kClassToken, "class_token")

enum class OpKind { QNAS_OP_KINDS(QNAS_ENUM_VALUE) };
inline constexpr const char* kOpKindNames[] = {QNAS_OP_KINDS(QNAS_ENUM_NAME)};
inline constexpr size_t kOpKindCount = sizeof(kOpKindNames) / sizeof(kOpKindNames[0]);

inline const char* op_name(OpKind kind) { return kOpKindNames[size_t(kind)]; }

}  // namespace qnas::deploy
