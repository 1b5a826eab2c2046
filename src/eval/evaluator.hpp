#pragma once
// Evaluation of one subnet: extract it from the supernet, recalibrate its BN
// statistics on a fixed set of training images, fold BN, build its deployed
// graph (weights quantized by its policy, activation ranges calibrated on a
// fixed set of training images), then measure top-1 of the graph simulated
// with fake quantization, the cost metrics and, on request, the same graph
// on real int8 kernels: its top-1, agreement and latency.

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/core/config.hpp"
#include "src/core/dataset.hpp"
#include "src/deploy/compress.hpp"
#include "src/deploy/graph.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/eval/latency.hpp"
#include "src/eval/metrics.hpp"
#include "supernet/supernet.hpp"

namespace qnas::eval {

struct EvalOptions {
  int64_t max_images = 0;  // 0 = the whole split
  bool deployed = false;   // also top-1 on the int8 runtime, and agreement with the simulation
  bool latency = false;    // time the deployed model (config `latency`), peak_rss_bytes
};

struct EvalResult {
  supernet::SubnetSpec spec;
  std::string split;
  int64_t images = 0;
  // top1 (%), params, macs, bops, model_bytes (of the deployed graph);
  // deployed: top1_deployed, max_logit_diff, int8_layers, fp32_layers;
  // latency: latency_ms(_p10/_p90/_std), throughput_img_s, peak_rss_bytes.
  Metrics metrics;
  std::vector<std::string> notes;             // e.g. weights widened onto int8 kernels
  std::vector<supernet::LayerInfo> layers;
  std::vector<deploy::LayerCompression> compression;  // gptq / decoupleq: per-layer output errors
  double seconds = 0;                         // wall time of the whole evaluation
  std::map<std::string, double> phase_s;      // extract, bn_recal, calibrate, top1
};

/// Resets every BatchNorm of `net` and re-estimates its statistics as the
/// average over `images` (batches of `batch_size`), in fp32.
void recalibrate_bn(supernet::SubnetImpl& net, const at::Tensor& images, int64_t batch_size);

/// The same with every layer's weight fake-quantized on its policy's RTN
/// grid while the statistics are gathered (eval.bn_recal_quantized), except
/// layers whose method fits its weights to the fp32 layer (MethodTraits::
/// fits_outputs: gptq, decoupleq, admm_cp, cp_rtn), which stay fp32; the
/// fp32 weights are restored afterwards. `net` must not be BN-folded yet.
void recalibrate_bn_quantized(supernet::SubnetImpl& net, const at::Tensor& images, int64_t batch_size);

/// The activation observer the config's `quant.act_observer` names.
quant::ActObserverSpec act_observer_spec(const core::QuantConfig& quant);

using Forward = std::function<at::Tensor(const at::Tensor&)>;

/// The deployed graph's input: the data's image shape and normalisation.
deploy::InputDesc input_desc(const core::Dataset& d);

/// Top-1 accuracy in percent of `forward` (logits of a batch).
double top1(const Forward& forward, const core::Split& split, int64_t batch_size);

/// A subnet ready for inference: recalibrated and folded, and its calibrated graph.
struct Prepared {
  supernet::Subnet subnet;
  deploy::Graph graph;
  std::vector<deploy::LayerCompression> compression;  // when some layer's method needs calibration data
};

class Evaluator {
 public:
  Evaluator(const core::Config& config, supernet::Supernet net, const core::Dataset& data);

  /// Wall time of each phase goes to `phase_s` when given.
  Prepared prepare(const supernet::SubnetSpec& spec, std::map<std::string, double>* phase_s = nullptr) const;
  /// `spec`'s policies on a subnet prepare() already recalibrated and folded
  /// (the same architecture): its graph without the BN recalibration. The
  /// subnet is shared, so it holds `spec`'s policies afterwards.
  Prepared prepare(const supernet::Subnet& folded, const supernet::SubnetSpec& spec,
                   std::map<std::string, double>* phase_s = nullptr) const;

  /// The graph of a BN-folded subnet (its current policies), activations
  /// calibrated on the calibration images; no calibration-data methods.
  deploy::Graph calibrated_graph(const supernet::SubnetImpl& subnet) const;

  /// The fixed, seeded training images activations are calibrated on.
  const at::Tensor& calibration_images() const { return act_images_; }
  const core::Config& config() const { return cfg_; }

  /// prepare() + top-1 on `split` ("val" or "test") + cost metrics, and
  /// what `opts` asks for.
  EvalResult evaluate(const supernet::SubnetSpec& spec, const std::string& split,
                      const EvalOptions& opts = {}) const;
  /// The same on a folded subnet of `spec`'s architecture (prepare() above).
  EvalResult evaluate(const supernet::Subnet& folded, const supernet::SubnetSpec& spec, const std::string& split,
                      const EvalOptions& opts = {}) const;

  const core::Split& split(const std::string& name) const;

  /// The spec latency_ms is measured against (config latency.reference):
  /// the largest architecture, every layer RTN W8A8.
  supernet::SubnetSpec latency_reference_spec() const;
  /// That reference's latency in ms at latency.batch_size: as set, else
  /// measured (timed alone, three times latency.runs passes) on first use.
  double latency_anchor_ms() const;
  void set_latency_anchor_ms(double ms);
  /// The image batch latency is timed on (one image repeated `n` times).
  at::Tensor latency_input(int64_t n) const;
  /// `model`'s latency at latency.batch_size as latency_ms reports it:
  /// interleaved with the reference and scaled by the anchor (the per-round
  /// ratio's median to `ratio`), or timed alone (latency.reference none).
  LatencyStats latency_of(const deploy::Int8Model& model, double* ratio = nullptr) const;

 private:
  void measure_latency_of(const deploy::Int8Model& model, Metrics& m) const;
  const deploy::Int8Model& latency_reference() const;
  using Clock = std::chrono::steady_clock;
  EvalResult measure(Prepared p, EvalResult r, const EvalOptions& opts, Clock::time_point start) const;

  core::Config cfg_;
  supernet::Supernet net_;
  const core::Dataset& data_;
  at::Tensor bn_images_;   // fixed, seeded choice of training images
  at::Tensor act_images_;  // the first quant.calib_images of them
  // Built on first use; an Evaluator measures one candidate at a time.
  mutable std::shared_ptr<const deploy::Int8Model> reference_;
  mutable double anchor_ms_ = 0;
};

/// A deployed model scored without its supernet.
struct ExportEvaluation {
  nlohmann::json spec;  // the spec its subnet.json records
  EvalResult result;    // result.spec is left empty: the export's space may not be the config's
};

/// Loads the safetensors export in `dir` (deploy::load_deployed: every
/// field checked against the file) and measures it on `split` of `data`:
/// top1_deployed on the int8 runtime, top1 of the simulation of the same
/// graph, their max_logit_diff, model_bytes, int8/fp32 layer counts and,
/// with opts.latency, the int8 runtime's latency at config.latency's batch
/// and threads, timed alone (no supernet reference to scale by). Images go
/// in as the model normalises them, whatever the config's data.mean/std.
/// Throws naming the folder when its input shape or class count is not the
/// data's.
ExportEvaluation evaluate_export(const std::string& dir, const core::Config& config, const core::Dataset& data,
                                 const std::string& split, const EvalOptions& opts = {});

}  // namespace qnas::eval
