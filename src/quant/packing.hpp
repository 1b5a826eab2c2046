#pragma once
// Weight codes below 8 bits stored packed: ceil(n * bits / 8) bytes, each
// code as `bits`-bit two's complement, little-endian bit order (code i
// occupies bits [i*bits, (i+1)*bits) of the stream). What model_bytes counts
// and what the safetensors export stores.

#include <ATen/core/Tensor.h>

namespace qnas::quant {

/// int8 codes in [-2^(bits-1), 2^(bits-1) - 1] -> uint8 stream (1-D).
at::Tensor pack_codes(const at::Tensor& codes, int bits);

/// The inverse: `numel` int8 codes (1-D) from a uint8 stream.
at::Tensor unpack_codes(const at::Tensor& packed, int64_t numel, int bits);

}  // namespace qnas::quant
