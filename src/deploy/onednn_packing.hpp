#pragma once
// Prepacking int8 layers for LibTorch's ONEDNN quantized kernels, shared by
// the int8 runtime and the TorchScript export (internal to deploy/).

#include <ATen/native/quantized/PackedParams.h>

#include "src/deploy/graph.hpp"

namespace qnas::deploy::detail {

using ConvPacked = c10::intrusive_ptr<ConvPackedParamsBase<2>>;
using LinearPacked = c10::intrusive_ptr<LinearPackedParamsBase>;

/// qint8 per-channel weights (zero point 0) and fp32 bias of an int8 layer;
/// a linear packs as given (2-D weights), a conv with "same" padding.
ConvPacked prepack_conv(const Node& n);
LinearPacked prepack_linear(const Node& n);

/// The same layer's weights reshaped as a 1x1 convolution (linear layers).
Node as_conv1x1(const Node& linear);

}  // namespace qnas::deploy::detail
