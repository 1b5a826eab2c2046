#include "src/quant/fake_quant.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "src/core/error.hpp"

namespace qnas::quant {

int64_t symmetric_qmax(int bits) {
  QNAS_CHECK(bits >= 2 && bits <= 16, "symmetric grid: bits ", bits, "; expected 2..16");
  return (int64_t(1) << (bits - 1)) - 1;
}

at::Tensor symmetric_weight_scales(const at::Tensor& w, int bits) {
  const auto amax = w.detach().abs().reshape({w.size(0), -1}).amax(1).to(at::kDouble);
  auto scales = amax / double(symmetric_qmax(bits));
  return at::where(scales > 0, scales, at::ones_like(scales));
}

namespace {
// Per-output-channel scales shaped to broadcast against a weight of `dim` dims.
at::Tensor channel_scales(const at::Tensor& scales, int64_t dim) {
  std::vector<int64_t> shape(size_t(dim), 1);
  shape[0] = scales.size(0);
  return scales.to(at::kFloat).reshape(shape);
}
}  // namespace

at::Tensor quantize_weight_codes(const at::Tensor& w, const at::Tensor& scales, int bits) {
  const int64_t qmax = symmetric_qmax(bits);
  auto codes = at::clamp(at::round(w.detach() / channel_scales(scales, w.dim())), -qmax, qmax);
  return bits <= 8 ? codes.to(at::kChar) : codes.to(at::kInt);
}

at::Tensor dequantize_weight_codes(const at::Tensor& codes, const at::Tensor& scales) {
  return codes.to(at::kFloat) * channel_scales(scales, codes.dim());
}

at::Tensor fake_quant_weight(const at::Tensor& w, int bits) {
  if (bits >= 32) return w;
  const auto scales = symmetric_weight_scales(w, bits);
  return dequantize_weight_codes(quantize_weight_codes(w, scales, bits), scales);
}

at::Tensor fake_quant_weight_ste(const at::Tensor& w, int bits) {
  if (bits >= 32) return w;
  return w + (fake_quant_weight(w.detach(), bits) - w.detach());
}

ActQParams act_qparams_from_range(double min, double max, int bits) {
  ActQParams q;
  q.bits = bits;
  if (bits >= 32) return q;
  QNAS_CHECK(std::isfinite(min) && std::isfinite(max), "activation range [", min, ", ", max,
             "] is not finite; expected finite calibration values");
  min = std::min(min, 0.0);
  max = std::max(max, 0.0);
  const double levels = double((int64_t(1) << bits) - 1);
  q.scale = (max - min) / levels;
  if (q.scale <= 0) q.scale = 1.0;  // an all-zero tensor: any scale is exact
  q.zero_point = std::clamp<int64_t>(int64_t(std::nearbyint(-min / q.scale)), 0, int64_t(levels));
  return q;
}

namespace {

// y = (clamp(round(x / s) + z, 0, qmax) - z) * s over n floats; round half to
// even, as ATen's fake quantization.
__attribute__((target_clones("avx512f", "avx2", "default")))
void fake_quant_span(const float* __restrict x, float* __restrict y, int64_t n, float inv_scale, float scale,
                     float zero_point, float qmax) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::min(std::max(__builtin_nearbyintf(x[i] * inv_scale) + zero_point, 0.f), qmax);
    y[i] = (q - zero_point) * scale;
  }
}

}  // namespace

at::Tensor fake_quant_act(const at::Tensor& x, const ActQParams& q) {
  if (!q.enabled()) return x;
  const int64_t qmax = (int64_t(1) << q.bits) - 1;
  const bool fused = x.scalar_type() == at::kFloat && x.is_non_overlapping_and_dense() &&
                     !(x.requires_grad() && at::GradMode::is_enabled());
  // Training needs the straight-through gradient: ATen's op (it also builds
  // a mask for the backward, which inference does not need).
  if (!fused) return at::fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, qmax);
  auto y = at::empty_like(x);  // same strides: the loop runs over memory order
  const float* xd = x.data_ptr<float>();
  float* yd = y.data_ptr<float>();
  // As ATen: the inverse of the float scale, in float.
  const float scale = float(q.scale), inv = 1.0f / scale, zp = float(q.zero_point);
  at::parallel_for(0, x.numel(), 1 << 14, [&](int64_t b, int64_t e) {
    fake_quant_span(xd + b, yd + b, e - b, inv, scale, zp, float(qmax));
  });
  return y;
}

at::Tensor fake_quant_act_ste(const at::Tensor& x, int bits) {
  if (bits >= 32) return x;
  const auto mm = at::aminmax(x.detach());
  const auto q = act_qparams_from_range(std::get<0>(mm).item<double>(), std::get<1>(mm).item<double>(), bits);
  return at::fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, (int64_t(1) << bits) - 1);
}

void MinMaxObserver::observe(const at::Tensor& x) {
  const auto mm = at::aminmax(x.detach());
  const double lo = std::get<0>(mm).item<double>(), hi = std::get<1>(mm).item<double>();
  min_ = seen_ ? std::min(min_, lo) : lo;
  max_ = seen_ ? std::max(max_, hi) : hi;
  seen_ = true;
}

}  // namespace qnas::quant
