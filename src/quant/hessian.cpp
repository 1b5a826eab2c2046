#include "src/quant/hessian.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "src/core/error.hpp"

namespace qnas::quant {

HessianAccumulator::HessianAccumulator(LayerShape shape)
    : shape_(shape), gen_(at::make_generator<at::CPUGeneratorImpl>(shape.seed)) {
  QNAS_CHECK(shape.in_channels > 0 && shape.kernel > 0 && shape.stride > 0 && shape.groups > 0,
             "hessian: layer shape in=", shape.in_channels, " kernel=", shape.kernel, " stride=", shape.stride,
             " groups=", shape.groups, "; expected positive values");
  QNAS_CHECK(shape.max_positions >= 0, "hessian: max_positions ", shape.max_positions, "; expected >= 0 (0: all)");
  QNAS_CHECK(shape.groups == 1 || shape.groups == shape.in_channels, "hessian: ", shape.groups,
             " groups over ", shape.in_channels, " channels; expected a dense (1) or depthwise layer");
}

void HessianAccumulator::add(const at::Tensor& x_in) {
  // Products in fp32 (the inputs are fp32 anyway; 4x faster than fp64),
  // summed across batches in fp64.
  const at::Tensor x = x_in.detach().to(at::kFloat);
  at::Tensor cols;  // [B, cols, samples]
  if (shape_.linear) {  // every token of [N, T, C] is a sample, as every image of [N, C]
    QNAS_CHECK((x.dim() == 2 || x.dim() == 3) && x.size(-1) == shape_.in_channels, "hessian: linear input ",
               x.sizes(), "; expected [N, ", shape_.in_channels, "] or tokens [N, T, ", shape_.in_channels, "]");
    cols = x.reshape({-1, shape_.in_channels}).t().unsqueeze(0);
  } else {
    QNAS_CHECK(x.dim() == 4 && x.size(1) == shape_.in_channels, "hessian: conv input ", x.sizes(), "; expected [N, ",
               shape_.in_channels, ", H, W]");
    const int64_t k = shape_.kernel, kk = k * k, n = x.size(0), c = shape_.in_channels;
    const int64_t pad = shape_.padding, st = shape_.stride;
    const at::Tensor xp = at::constant_pad_nd(x, {pad, pad, pad, pad}).contiguous();  // NCHW
    const int64_t hp = xp.size(2), wp = xp.size(3);
    const int64_t ho = (hp - k) / st + 1, wo = (wp - k) / st + 1, l = ho * wo;
    const int64_t m = shape_.max_positions > 0 ? std::min(l, shape_.max_positions) : l;
    // Output positions: all, or seeded random ones drawn anew for every image
    // (any fixed pattern aliases with the image grid: a stride can land every
    // sample on the zero-padded border column).
    const at::Tensor pos = m < l ? at::randint(l, {n, m}, gen_, at::TensorOptions(at::kLong))
                                 : at::arange(l, at::kLong).unsqueeze(0).expand({n, l});
    const at::Tensor corner = (pos.div(wo, "floor") * st * wp + pos.remainder(wo) * st).unsqueeze(1).expand({n, c, m});
    // One gather per kernel offset from the flat padded input: [k*k, N, C, m].
    const at::Tensor flat = xp.view({n, c, hp * wp});
    std::vector<at::Tensor> taps;
    for (int64_t a = 0; a < k; ++a)
      for (int64_t b = 0; b < k; ++b) taps.push_back(flat.gather(2, corner + (a * wp + b)));
    const at::Tensor picked = at::stack(taps).permute({2, 0, 1, 3});  // [C, k*k, N, m], columns channel-major
    const int64_t samples = picked.numel() / (c * kk);
    cols = shape_.groups == 1 ? picked.reshape({1, c * kk, samples}) : picked.reshape({c, kk, samples});
  }
  const at::Tensor outer = at::bmm(cols, cols.transpose(1, 2)).to(at::kDouble);
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
