#pragma once
// Exports of a calibrated deployed graph. Every export takes raw pixels in
// [0,1] (N x C x H x W fp32) and returns logits: the input normalisation is
// folded in, so a consumer needs no constants.
//
//   onnx         model.onnx: opset 17, QuantizeLinear/DequantizeLinear around
//                the int8 convs, gemms and token matmuls (per-channel int8
//                weights, int32 biases at the accumulator scale, the form ONNX
//                Runtime fuses into integer kernels), fp32 elsewhere
//                (LayerNormalization, GELU through Erf, attention as
//                MatMul/Softmax); checked by onnx::checker. Weights below 8 bits are widened to int8
//                (ONNX INT4 needs opset 21; Debian's ONNX 1.12 stops at 17).
//   torchscript  model.pt: a torch::jit::Module whose attributes are the
//                ONEDNN packed params and whose forward is TorchScript
//                source; load with torch::jit::load or Python's
//                torch.jit.load after selecting the onednn engine.
//   safetensors  model.safetensors (tensors at their stored dtype; weights
//                below 8 bits packed two per byte) + subnet.json (the spec,
//                the graph, activation scales and zero points, input
//                normalisation); load_deployed() rebuilds the model.
//
// An export is written into a temporary folder beside `out_dir` and renamed
// into place at the end: a failure leaves no partial folder behind.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

enum class ExportFormat { kOnnx, kTorchScript, kSafetensors };

/// onnx | torchscript | safetensors; throws naming the accepted values.
ExportFormat parse_export_format(const std::string& name);
const char* export_format_name(ExportFormat format);

struct ExportOptions {
  ExportFormat format = ExportFormat::kOnnx;
  std::string out_dir;
  bool overwrite = false;  // replace an existing, non-empty out_dir
  nlohmann::json spec;     // the subnet's spec, recorded beside the model
  std::vector<std::string> class_names;  // written as classes.json when given
};

struct ExportResult {
  std::string dir;
  std::vector<std::string> files;     // names inside dir
  std::vector<std::string> warnings;  // e.g. sub-8-bit weights widened
};

/// Writes the export of a calibrated graph; throws qnas::Error on bad input
/// (uncalibrated graph, unwritable or occupied out_dir) with nothing left on disk.
ExportResult export_graph(const Graph& graph, const ExportOptions& options);

struct DeployedExport {
  Graph graph;  // calibrated: Int8Model(graph) runs it; raw pixels go through normalize_input()
  nlohmann::json spec;
};

/// Rebuilds the deployed graph from a safetensors export folder
/// (model.safetensors + subnet.json) alone.
DeployedExport load_deployed(const std::string& dir);

}  // namespace qnas::deploy
