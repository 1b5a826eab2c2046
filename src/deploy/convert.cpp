#include "src/deploy/convert.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "src/core/error.hpp"

namespace qnas::deploy {

namespace {

struct Affine {
  float inv_scale, scale, zero_point;
};

void quantize_scalar(const float* x, uint8_t* y, int64_t n, const Affine& a) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = uint8_t(std::min(std::max(std::nearbyint(x[i] * a.inv_scale) + a.zero_point, 0.f), 255.f));
}

void dequantize_scalar(const uint8_t* q, float* y, int64_t n, const Affine& a) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float(q[i]) - a.zero_point) * a.scale;
}

// Eight codes, as int32: round half to even, clamp in float (where the
// integers are exact), convert, add the zero point.
__attribute__((target("avx2"))) inline __m256i codes8(const float* p, __m256 inv, __m256 lo, __m256 hi, __m256i zp) {
  __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(p), inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
}

// 32 values per step: four groups of codes packed to bytes, the packs' lane
// order undone.
__attribute__((target("avx2"))) void quantize_avx2(const float* x, uint8_t* y, int64_t n, const Affine& a) {
  const __m256 inv = _mm256_set1_ps(a.inv_scale), lo = _mm256_set1_ps(-a.zero_point),
               hi = _mm256_set1_ps(255.f - a.zero_point);
  const __m256i zp = _mm256_set1_epi32(int(a.zero_point)), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i ab = _mm256_packs_epi32(codes8(x + i, inv, lo, hi, zp), codes8(x + i + 8, inv, lo, hi, zp));
    const __m256i cd = _mm256_packs_epi32(codes8(x + i + 16, inv, lo, hi, zp), codes8(x + i + 24, inv, lo, hi, zp));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), bytes);
  }
  quantize_scalar(x + i, y + i, n - i, a);
}

__attribute__((target("avx2"))) void dequantize_avx2(const uint8_t* q, float* y, int64_t n, const Affine& a) {
  const __m256 scale = _mm256_set1_ps(a.scale), zp = _mm256_set1_ps(a.zero_point);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i codes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i)));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(codes), zp), scale));
  }
  dequantize_scalar(q + i, y + i, n - i, a);
}

bool has_avx2() {
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
  }();
  return avx2;
}

Affine affine(double scale, int64_t zero_point) {
  return {1.0f / float(scale), float(scale), float(zero_point)};
}

// f(begin, end) over n elements, in chunks on LibTorch's threads.
template <class F>
void chunks(int64_t n, F f) {
  at::parallel_for(0, n, 1 << 16, f);
}

}  // namespace

at::Tensor quantize_act(const at::Tensor& x_in, const QParams& q) {
  QNAS_CHECK(x_in.scalar_type() == at::kFloat, "quantize: input of type ", x_in.scalar_type(), "; expected fp32");
  const auto format = x_in.suggest_memory_format();
  const auto x = x_in.contiguous(format);
  auto y = at::_empty_affine_quantized(x.sizes(), x.options().dtype(at::kQUInt8), q.scale, q.zero_point, format);
  const auto* xd = x.data_ptr<float>();
  auto* yd = reinterpret_cast<uint8_t*>(y.data_ptr<c10::quint8>());
  const Affine a = affine(q.scale, q.zero_point);
  const auto kernel = has_avx2() ? quantize_avx2 : quantize_scalar;
  chunks(x.numel(), [&](int64_t b, int64_t e) { kernel(xd + b, yd + b, e - b, a); });
  return y;
}

at::Tensor dequantize_act(const at::Tensor& qx_in) {
  QNAS_CHECK(qx_in.scalar_type() == at::kQUInt8, "dequantize: input of type ", qx_in.scalar_type(), "; expected quint8");
  const auto format = qx_in.suggest_memory_format();
  const auto qx = qx_in.contiguous(format);
  auto y = at::empty(qx.sizes(), qx.options().dtype(at::kFloat), format);
  const auto* qd = reinterpret_cast<const uint8_t*>(qx.data_ptr<c10::quint8>());
  auto* yd = y.data_ptr<float>();
  const Affine a = affine(qx.q_scale(), qx.q_zero_point());
  const auto kernel = has_avx2() ? dequantize_avx2 : dequantize_scalar;
  chunks(qx.numel(), [&](int64_t b, int64_t e) { kernel(qd + b, yd + b, e - b, a); });
  return y;
}

}  // namespace qnas::deploy
