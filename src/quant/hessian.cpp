#include "src/quant/hessian.hpp"

#include <ATen/ATen.h>

#include "src/core/error.hpp"

namespace qnas::quant {

HessianAccumulator::HessianAccumulator(LayerShape shape) : shape_(shape) {
  QNAS_CHECK(shape.in_channels > 0 && shape.kernel > 0 && shape.stride > 0 && shape.groups > 0,
             "hessian: layer shape in=", shape.in_channels, " kernel=", shape.kernel, " stride=", shape.stride,
             " groups=", shape.groups, "; expected positive values");
  QNAS_CHECK(shape.groups == 1 || shape.groups == shape.in_channels, "hessian: ", shape.groups,
             " groups over ", shape.in_channels, " channels; expected a dense (1) or depthwise layer");
}

void HessianAccumulator::add(const at::Tensor& x_in) {
  const at::Tensor x = x_in.detach().to(at::kDouble);
  at::Tensor cols;  // [B, cols, samples]
  if (shape_.linear) {
    QNAS_CHECK(x.dim() == 2 && x.size(1) == shape_.in_channels, "hessian: linear input ", x.sizes(),
               "; expected [N, ", shape_.in_channels, "]");
    cols = x.t().unsqueeze(0);
  } else {
    QNAS_CHECK(x.dim() == 4 && x.size(1) == shape_.in_channels, "hessian: conv input ", x.sizes(), "; expected [N, ",
               shape_.in_channels, ", H, W]");
    const int64_t k = shape_.kernel, kk = k * k, n = x.size(0), c = shape_.in_channels;
    const at::Tensor patches = at::im2col(x, {k, k}, {1, 1}, {k / 2, k / 2}, {shape_.stride, shape_.stride});
    const int64_t l = patches.size(2);  // [N, C*k*k, L], channel-major like the weight's columns
    cols = shape_.groups == 1 ? patches.permute({1, 0, 2}).reshape({1, c * kk, n * l})
                              : patches.view({n, c, kk, l}).permute({1, 2, 0, 3}).reshape({c, kk, n * l});
  }
  const at::Tensor outer = at::bmm(cols, cols.transpose(1, 2));
  sum_ = sum_.defined() ? sum_ + outer : outer;
  samples_ += cols.size(2);
}

at::Tensor HessianAccumulator::mean() const {
  QNAS_CHECK(samples_ > 0, "hessian: no calibration inputs seen; expected at least one batch");
  return sum_ / double(samples_);
}

at::Tensor as_matrix(const at::Tensor& weight) {
  return weight.reshape({weight.size(0), -1});
}

double relative_output_error(const at::Tensor& w, const at::Tensor& w_hat, const at::Tensor& h) {
  const int64_t b = h.size(0), rows = w.size(0), cols = w.size(1);
  QNAS_CHECK(rows % b == 0 && h.size(1) == cols && w_hat.sizes() == w.sizes(), "output error: weight ", w.sizes(),
             ", quantized ", w_hat.sizes(), ", H ", h.sizes(), "; expected H [B, cols, cols] with B dividing the rows");
  const auto quadratic = [&](const at::Tensor& m) {
    const at::Tensor m3 = m.to(at::kDouble).reshape({b, rows / b, cols});
    return at::bmm(m3, h).mul(m3).sum().item<double>();
  };
  const double base = quadratic(w);
  return base > 0 ? quadratic(w - w_hat) / base : 0.0;
}

}  // namespace qnas::quant
