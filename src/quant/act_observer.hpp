#pragma once
// Activation observer for per-tensor asymmetric quantization with a choice
// of clipping: min/max, a percentile at each end, or the clip ratio of the
// min/max range with the least squared quantization error. Percentile and
// MSE need the values, not only their range: the observer keeps a bounded,
// deterministic strided subsample of everything it sees (every batch
// contributes in proportion to its size; the sample is halved whenever it
// outgrows the cap), plus the exact min and max.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "src/quant/fake_quant.hpp"
#include "src/quant/grid.hpp"

namespace qnas::quant {

struct ActObserverSpec {
  int bits = 8;
  Clip clip = Clip::kMinMax;
  double percentile = 99.99;   // kPercentile: the range [p_(100-x), p_x]
  int mse_steps = 100;         // kMse: ratios 1 ... mse_min_ratio of the min/max range
  double mse_min_ratio = 0.2;
  int64_t sample_cap = 1 << 20;
};

/// Throws naming `where` when a field is out of range.
void check_act_observer_spec(const ActObserverSpec& spec, const std::string& where);

class ActObserver {
 public:
  explicit ActObserver(ActObserverSpec spec = {});
  void observe(const at::Tensor& x);
  bool seen() const { return range_.seen(); }
  /// Parameters for everything observed so far (the range always includes 0).
  ActQParams qparams() const;
  /// How many values the subsample holds now (<= sample_cap).
  int64_t sample_size() const;

 private:
  ActObserverSpec spec_;
  MinMaxObserver range_;
  at::Tensor sample_;     // 1-D float
  int64_t stride_ = 1;    // every stride_-th value of a batch goes into the sample
};

}  // namespace qnas::quant
