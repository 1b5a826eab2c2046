#pragma once
// A latency model of the deployed graph, measured on this host: a table of
// per-layer "segments" (a layer's node, compressible or a transformer's
// attention, LayerNorm or embedding, and the nodes between it and the
// previous layer: its input's Quantize / Dequantize, the residual add and SE
// gating before it), keyed by the layer's shape, its precision
// class and its predecessor's, timed on the int8 runtime inside probe
// subnets that cover every shape and every pair of neighbouring precisions
// the space can produce. A candidate's estimate is the sum of its layers'
// entries, from layer shapes alone (no weights, no graph), so it is cheap
// enough for a predictor feature over thousands of genomes. The table is
// built once per (host, latency config, supernet structure, policy
// classes) and cached in a JSON file beside the checkpoint.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/core/config.hpp"
#include "src/quant/policy.hpp"
#include "supernet/layer_info.hpp"
#include "supernet/space.hpp"

namespace qnas::eval {

class Evaluator;

/// The runtime a layer's policy puts it on (deploy/graph.hpp's precision
/// rules): int8 (int8 kernel), qin (fp32 kernel on a quantized input), dyn
/// (dynamically quantized linear), fp32; "+cp" when factorized, "+smooth"
/// for SmoothQuant (its scale nodes).
std::string precision_class(const quant::LayerPolicy& policy);

/// This host as the table's identity sees it: CPU model, logical cores,
/// host name.
nlohmann::json host_description();

/// One layer's share of an estimate.
struct LatencyItem {
  std::string layer;
  std::string key;  // the table entry used ("" when none fits: 0 ms)
  double ms = 0;
};

struct LatencyEstimate {
  double ms = 0;  // the sum of items' ms
  std::vector<LatencyItem> items;
  int unmodelled = 0;  // layers no entry fits
};

struct LatencyModelOptions {
  nlohmann::json host = host_description();  // tests pass another host
};

class LatencyModel {
 public:
  /// The table in `path` when its identity matches; otherwise measures it
  /// (probe subnets through `evaluator`, timed as config `latency` says) and
  /// writes it there atomically. `measured` tells which happened.
  static LatencyModel load_or_build(const Evaluator& evaluator, const supernet::SpaceDesc& space,
                                    const std::string& path, bool* measured = nullptr,
                                    const LatencyModelOptions& options = {});

  /// Sum over `layers` (network order, with their policies) of their entries.
  LatencyEstimate estimate(const std::vector<supernet::LayerInfo>& layers) const;

  const std::map<std::string, double>& table() const { return table_; }
  const nlohmann::json& identity() const { return identity_; }
  /// Probe subnets the table was measured on.
  int probes() const { return probes_; }

  /// `<dir>/latency_table.json`.
  static std::string path_in(const std::string& dir);

 private:
  nlohmann::json identity_;
  std::map<std::string, double> table_;  // key -> median ms
  int probes_ = 0;
};

/// Sets `evaluator`'s latency anchor (the reference's latency that
/// latency_ms scales its ratios by) from `path` when it was measured on
/// this host with this latency config, supernet structure and reference;
/// otherwise measures it and, when `write`, stores it there atomically. So
/// latency_ms stays comparable across the processes of one run folder
/// (resumed searches, `qnas eval`). Returns the anchor (0 when
/// latency.reference is none); `measured` tells whether it was timed now.
double load_or_measure_anchor(Evaluator& evaluator, const supernet::SpaceDesc& space, const std::string& path,
                              bool write = true, bool* measured = nullptr, const LatencyModelOptions& options = {});

/// `<dir>/latency_reference.json`.
std::string anchor_path_in(const std::string& dir);

/// The keys a layer's segment is looked up under, most specific first:
/// (layer, shape, class, previous class), (shape, class, previous class),
/// (shape, class). `previous` is null for the first layer.
std::vector<std::string> segment_keys(const supernet::LayerInfo& layer, const supernet::LayerInfo* previous);

}  // namespace qnas::eval
