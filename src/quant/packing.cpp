#include "src/quant/packing.hpp"

#include <ATen/ATen.h>

#include "src/core/error.hpp"
#include "src/quant/policy.hpp"

namespace qnas::quant {

namespace {
void check_bits(int bits) { QNAS_CHECK(bits >= 1 && bits <= 8, "packing: ", bits, " bits; expected 1..8"); }
}  // namespace

at::Tensor pack_codes(const at::Tensor& codes, int bits) {
  check_bits(bits);
  const auto c = codes.to(at::kChar).contiguous().reshape({-1});
  const int64_t n = c.numel();
  auto out = at::zeros({packed_weight_bytes(n, bits)}, at::kByte);
  const auto* src = c.data_ptr<int8_t>();
  auto* dst = out.data_ptr<uint8_t>();
  const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
  const unsigned mask = (1u << bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    QNAS_CHECK(src[i] >= lo && src[i] <= hi, "packing: code ", int(src[i]), " outside the ", bits, "-bit range [",
               lo, ", ", hi, "]");
    const unsigned v = unsigned(src[i]) & mask;
    const int64_t bit = i * bits;
    dst[bit / 8] |= uint8_t(v << (bit % 8));
    if (bit % 8 + bits > 8) dst[bit / 8 + 1] |= uint8_t(v >> (8 - bit % 8));
  }
  return out;
}

at::Tensor unpack_codes(const at::Tensor& packed, int64_t numel, int bits) {
  check_bits(bits);
  const auto p = packed.contiguous();
  const int64_t bytes = packed_weight_bytes(numel, bits);
  QNAS_CHECK(p.scalar_type() == at::kByte && p.numel() == bytes, "packing: ", p.numel(), " bytes for ", numel,
             " codes of ", bits, " bits; expected ", bytes, " uint8 bytes");
  auto out = at::empty({numel}, at::kChar);
  const auto* src = p.data_ptr<uint8_t>();
  auto* dst = out.data_ptr<int8_t>();
  const unsigned mask = (1u << bits) - 1, sign = 1u << (bits - 1);
  for (int64_t i = 0; i < numel; ++i) {
    const int64_t bit = i * bits;
    unsigned v = unsigned(src[bit / 8]) >> (bit % 8);
    if (bit % 8 + bits > 8) v |= unsigned(src[bit / 8 + 1]) << (8 - bit % 8);
    v &= mask;
    dst[i] = int8_t(int(v ^ sign) - int(sign));  // sign-extend
  }
  return out;
}

}  // namespace qnas::quant
