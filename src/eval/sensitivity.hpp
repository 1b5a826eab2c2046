#pragma once
// QuantuneV2 on a subnet: per-layer sensitivity from two inference passes
// (fp32, then every compressible layer quantized at a candidate bit-width)
// over the evaluator's calibration images; mixed-precision allocation under a
// model_bytes or BOPs budget from it; and the check of its ranking against
// the measured top-1 drop of quantizing each layer alone.

#include <string>
#include <vector>

#include "src/eval/evaluator.hpp"
#include "src/quant/sensitivity.hpp"

namespace qnas::core {
class TaskQueue;
}

namespace qnas::eval {

/// One quantized pass: every compressible layer at weight_bits / act_bits by
/// round-to-nearest, against fp32.
struct SensitivityPass {
  int weight_bits = 32, act_bits = 32;
  std::vector<quant::LayerSensitivity> layers;  // network order, scored
  double model_bytes = 0;  // of the quantized graph
  double seconds = 0;      // the two passes
};

struct SensitivityReport {
  supernet::SubnetSpec spec;  // the architecture; policies fp32
  std::vector<supernet::LayerInfo> layers;
  int64_t images = 0;         // calibration images per pass
  double prepare_seconds = 0; // extraction, BN recalibration, fp32 graph
  std::vector<SensitivityPass> passes;  // one per candidate weight bit-width, ascending
};

/// The architecture of `spec` with every compressible layer at fp32; the fp32
/// pass, then one quantized pass per entry of `weight_bits` (<= 8 each).
SensitivityReport measure_sensitivity(const Evaluator& evaluator, const supernet::SubnetSpec& spec,
                                      std::vector<int> weight_bits, int act_bits);

/// What a budget limits: "model_bytes" (the deployed graph's) or "bops".
struct Budget {
  std::string metric = "model_bytes";
  double value = 0;
};

struct MixedPrecision {
  supernet::SubnetSpec spec;  // the allocated policies (round-to-nearest)
  quant::Allocation allocation;
  double fixed = 0;           // the budget's part no weight bit-width changes
};

/// Per-layer weight bits from the report's candidates (each pass's scores),
/// activations at the passes' act_bits, so that fixed + allocated cost <=
/// budget (allocate_bits: greedy on sensitivity per unit of cost).
MixedPrecision allocate_mixed(const SensitivityReport& report, const Budget& budget);

/// For every layer of `spec` (an architecture), top-1 on the first
/// `max_images` of `split` (0: all) with that layer alone at `policy` and
/// the others fp32, minus top-1 with none quantized: the drop each layer
/// causes alone. Progress on stderr. With `queue` (rank 0 of several
/// processes), the layers are measured by the workers serve_layer_drops runs.
struct LayerDrops {
  double fp32_top1 = 0;
  std::vector<std::string> layers;
  std::vector<double> drops;
};
LayerDrops single_layer_drops(const Evaluator& evaluator, const supernet::SubnetSpec& spec,
                              const quant::LayerPolicy& policy, const std::string& split, int64_t max_images,
                              core::TaskQueue* queue = nullptr);
/// Workers: single_layer_drops' layers, one task each, until rank 0 closes `queue`.
void serve_layer_drops(core::TaskQueue& queue, const Evaluator& evaluator, const supernet::SubnetSpec& spec,
                       const quant::LayerPolicy& policy, const std::string& split, int64_t max_images);

}  // namespace qnas::eval
