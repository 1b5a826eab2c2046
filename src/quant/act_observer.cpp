#include "src/quant/act_observer.hpp"

#include <ATen/ATen.h>

#include "src/core/error.hpp"

namespace qnas::quant {

void check_act_observer_spec(const ActObserverSpec& spec, const std::string& where) {
  QNAS_CHECK(spec.bits >= 2 && spec.bits <= 8, where, ": ", spec.bits, "-bit activations; expected 2..8 bits");
  QNAS_CHECK(spec.percentile > 50 && spec.percentile <= 100, where, ": percentile ", spec.percentile,
             "; expected (50, 100]");
  QNAS_CHECK(spec.mse_steps >= 1 && spec.mse_min_ratio > 0 && spec.mse_min_ratio <= 1, where, ": MSE search of ",
             spec.mse_steps, " steps down to ", spec.mse_min_ratio, "; expected >= 1 step down to a ratio in (0, 1]");
  QNAS_CHECK(spec.sample_cap >= 1024, where, ": sample cap ", spec.sample_cap, "; expected at least 1024 values");
}

ActObserver::ActObserver(ActObserverSpec spec) : spec_(spec) {
  check_act_observer_spec(spec_, "activation observer");
}

void ActObserver::observe(const at::Tensor& x_in) {
  if (x_in.numel() == 0) return;
  range_.observe(x_in);
  if (spec_.clip == Clip::kMinMax) return;  // the range is all it needs
  const at::Tensor x = x_in.detach().to(at::kFloat).flatten();
  const at::Tensor part = x.slice(0, 0, x.numel(), stride_).clone();
  sample_ = sample_.defined() ? at::cat({sample_, part}) : part;
  while (sample_.numel() > spec_.sample_cap) {
    sample_ = sample_.slice(0, 0, sample_.numel(), 2).clone();
    stride_ *= 2;
  }
}

int64_t ActObserver::sample_size() const { return sample_.defined() ? sample_.numel() : 0; }

ActQParams ActObserver::qparams() const {
  QNAS_CHECK(seen(), "activation observer: no values observed; expected calibration batches first");
  if (spec_.clip == Clip::kMinMax) return act_qparams_from_range(range_.min(), range_.max(), spec_.bits);
  const at::Tensor s = sample_.to(at::kDouble);
  if (spec_.clip == Clip::kPercentile) {
    const double p = spec_.percentile / 100.0;
    return act_qparams_from_range(at::quantile(s, 1.0 - p).item<double>(), at::quantile(s, p).item<double>(),
                                  spec_.bits);
  }
  ActQParams best = act_qparams_from_range(range_.min(), range_.max(), spec_.bits);
  const auto error = [&](const ActQParams& q) {
    const double levels = double((int64_t(1) << spec_.bits) - 1);
    const at::Tensor codes = at::clamp(at::round(s / q.scale) + double(q.zero_point), 0.0, levels);
    return ((codes - double(q.zero_point)) * q.scale - s).square().sum().item<double>();
  };
  double best_err = error(best);
  for (int i = 1; i <= spec_.mse_steps; ++i) {
    const double ratio = 1.0 - (1.0 - spec_.mse_min_ratio) * i / spec_.mse_steps;
    const ActQParams q = act_qparams_from_range(range_.min() * ratio, range_.max() * ratio, spec_.bits);
    const double err = error(q);
    if (err < best_err) best = q, best_err = err;
  }
  return best;
}

}  // namespace qnas::quant
