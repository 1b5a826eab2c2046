#pragma once
// Evaluation of one subnet: extract it from the supernet, recalibrate its BN
// statistics on a fixed set of training images, fold BN, apply its policy
// (weights, then activation ranges calibrated on a fixed set of training
// images), then measure top-1 on a split and the cost metrics.

#include <map>
#include <string>
#include <vector>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "src/eval/metrics.hpp"
#include "supernet/supernet.hpp"

namespace qnas::eval {

struct EvalResult {
  supernet::SubnetSpec spec;
  std::string split;
  int64_t images = 0;
  Metrics metrics;                            // top1 (%) and cost_metrics()
  std::vector<supernet::LayerInfo> layers;
  double seconds = 0;                         // wall time of the whole evaluation
  std::map<std::string, double> phase_s;      // extract, bn_recal, calibrate, top1
};

/// Resets every BatchNorm of `net` and re-estimates its statistics as the
/// average over `images` (batches of `batch_size`), in fp32.
void recalibrate_bn(supernet::SubnetImpl& net, const at::Tensor& images, int64_t batch_size);

/// Top-1 accuracy in percent.
double top1(supernet::SubnetImpl& net, const core::Split& split, int64_t batch_size);

class Evaluator {
 public:
  Evaluator(const core::Config& config, supernet::Supernet net, const core::Dataset& data);

  /// A subnet ready for inference: recalibrated, folded, quantized, calibrated.
  /// Wall time of each phase goes to `phase_s` when given.
  supernet::Subnet prepare(const supernet::SubnetSpec& spec,
                           std::map<std::string, double>* phase_s = nullptr) const;

  /// prepare() + top-1 on `split` ("val" or "test") + cost metrics.
  EvalResult evaluate(const supernet::SubnetSpec& spec, const std::string& split,
                      int64_t max_images = 0) const;

  const core::Split& split(const std::string& name) const;

 private:
  core::Config cfg_;
  supernet::Supernet net_;
  const core::Dataset& data_;
  at::Tensor bn_images_;   // fixed, seeded choice of training images
  at::Tensor act_images_;  // the first quant.calib_images of them
};

}  // namespace qnas::eval
