#pragma once
// Local-metric sensitivity (QuantuneV2) and the mixed-precision allocator
// built on it. Plain data and arithmetic; no LibTorch here. The measurement
// itself (two inference passes over a calibration set) is
// deploy::measure_sensitivity().
//
// Per layer, comparing a quantized pass with the fp32 one on the same images:
//   weight_sqnr_db   10 log10(|W|^2 / |W~ - W|^2) of the layer's weights
//   weight_mse       mean (W~ - W)^2
//   output_sqnr_db   SQNR of the layer's output in the quantized network
//   sqnr_drop_db     input SQNR minus output SQNR: what the layer itself loses
//                    (the quantized pass accumulates its predecessors' noise)
//   output_mse       mean (y~ - y)^2 of its output in the quantized network
//   local_sqnr_db    SQNR of its output when it alone is quantized (its
//                    quantized weights and input grid on the fp32 pass's input)
//
// The score, from which the ranking and the allocator work, combines the
// local output error with how much the loss reacts to it:
//   score = mean over images of (g . delta)^2
// where delta is the layer's local output error (the one behind
// local_sqnr_db) and g the gradient, at the layer's output, of the fp32
// network's cross-entropy against its own prediction (one backward pass
// added to the fp32 pass; no labels). To first order that is the squared
// change of each image's loss, i.e. delta weighted by the empirical Fisher
// information. Why not SQNR / MSE alone: in a residual network a layer's own
// SQNR says little about what reaches the output (measured on fmnist_full's
// largest subnet at 2 bits, Spearman with the top-1 drop of quantizing each
// layer alone: local SQNR 0.14, output MSE -0.10, score 0.70; README).

#include <cstdint>
#include <string>
#include <vector>

namespace qnas::quant {

/// Running sums of a signal's and its error's energy.
struct SignalNoise {
  double signal = 0, noise = 0;
  int64_t count = 0;

  void add(double signal_energy, double noise_energy, int64_t n) {
    signal += signal_energy;
    noise += noise_energy;
    count += n;
  }
  /// 10 log10(signal / noise); capped at 200 dB where the noise vanishes.
  double sqnr_db() const;
  /// noise / count.
  double mse() const { return count > 0 ? noise / double(count) : 0.0; }
};

struct LayerSensitivity {
  std::string layer;
  int weight_bits = 32, act_bits = 32;  // of the quantized pass
  double weight_sqnr_db = 0, weight_mse = 0;
  double input_sqnr_db = 0, output_sqnr_db = 0, sqnr_drop_db = 0, output_mse = 0;
  double local_sqnr_db = 0;
  double score = 0;  // larger = more sensitive (see above)
};

/// Indices of `layers` from most to least sensitive (ties by name).
std::vector<size_t> ranking(const std::vector<LayerSensitivity>& layers);

/// Spearman's rank correlation of two equally long series (tied values get
/// their average rank); 0 when either is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// --- Mixed-precision allocation ----------------------------------------------

/// One layer's options: bit-widths ascending, and for each its cost (bytes
/// or BOPs) and sensitivity (larger = worse).
struct AllocationLayer {
  std::string layer;
  std::vector<int> bits;
  std::vector<double> cost, sensitivity;
};

struct Allocation {
  std::vector<int> bits;  // per layer, in the order given
  double cost = 0;        // sum of the chosen costs (without any fixed part)
  double sensitivity = 0; // sum of the chosen sensitivities
};

/// Greedy: every layer starts at its highest bit-width; while the total cost
/// is above `budget`, lower by one step the layer whose step costs the least
/// sensitivity per unit of cost saved (a heap of each layer's next step:
/// O(L K log L) for K bit-widths). The steps are taken in one order whatever
/// the budget, so a larger budget never gives a layer fewer bits. Throws
/// naming the smallest reachable cost when the budget is below it.
Allocation allocate_bits(const std::vector<AllocationLayer>& layers, double budget);

}  // namespace qnas::quant
