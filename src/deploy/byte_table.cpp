#include "src/deploy/byte_table.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "src/core/error.hpp"

namespace qnas::deploy {

namespace {

void lookup_scalar(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

// 64 lookups per step: two 128-entry permutes (VBMI) and a blend on the top bit.
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
void lookup_vbmi(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i idx = _mm512_loadu_si512(x + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, idx, t3);
    _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
  }
  lookup_scalar(x + i, y + i, n - i, table);
}

using Lookup = void (*)(const uint8_t*, uint8_t*, int64_t, const uint8_t*);

Lookup best_lookup() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw") ? lookup_vbmi : lookup_scalar;
}

}  // namespace

ByteTable::ByteTable(supernet::Act act, const QParams& in, const QParams& out) : out_(out) {
  const auto codes = at::arange(256, at::kFloat);
  const auto y = supernet::apply_act((codes - float(in.zero_point)) * float(in.scale), act);
  // As the simulation (quant::fake_quant_act): the inverse of the float scale, in float.
  const float inv = 1.0f / float(out.scale), zp = float(out.zero_point);
  const auto acc = y.accessor<float, 1>();
  for (int c = 0; c < 256; ++c)
    table_[size_t(c)] = uint8_t(std::min(std::max(std::nearbyint(acc[c] * inv) + zp, 0.f), 255.f));
}

at::Tensor ByteTable::apply(const at::Tensor& qx) const {
  QNAS_CHECK(qx.scalar_type() == at::kQUInt8, "ByteTable: input of type ", qx.scalar_type(), "; expected quint8");
  const auto format = qx.suggest_memory_format();
  const auto x = qx.contiguous(format);
  auto y = at::_empty_affine_quantized(x.sizes(), x.options(), out_.scale, out_.zero_point, format);
  const auto* xd = reinterpret_cast<const uint8_t*>(x.data_ptr<c10::quint8>());
  auto* yd = reinterpret_cast<uint8_t*>(y.data_ptr<c10::quint8>());
  static const Lookup lookup = best_lookup();
  at::parallel_for(0, x.numel(), 1 << 16, [&](int64_t b, int64_t e) { lookup(xd + b, yd + b, e - b, table_.data()); });
  return y;
}

}  // namespace qnas::deploy
