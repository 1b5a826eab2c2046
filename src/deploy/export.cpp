#include "src/deploy/export.hpp"

#include <ATen/ATen.h>

#include "src/core/dataset.hpp"
#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/deploy/export_formats.hpp"

namespace qnas::deploy {

ExportFormat parse_export_format(const std::string& name) {
  if (name == "onnx") return ExportFormat::kOnnx;
  if (name == "torchscript") return ExportFormat::kTorchScript;
  if (name == "safetensors") return ExportFormat::kSafetensors;
  QNAS_THROW("export format '", name, "'; expected onnx, torchscript or safetensors");
}

const char* export_format_name(ExportFormat format) {
  switch (format) {
    case ExportFormat::kOnnx: return "onnx";
    case ExportFormat::kTorchScript: return "torchscript";
    case ExportFormat::kSafetensors: return "safetensors";
  }
  return "?";
}

namespace detail {

namespace {

template <class Pred, class Label>
std::string layer_list(const Graph& graph, Pred pred, Label label) {
  std::string out;
  for (const auto& n : graph.nodes)
    if (n.has_weight() && pred(n)) out += (out.empty() ? "" : ", ") + n.name + " (" + label(n) + ")";
  return out;
}

}  // namespace

std::string sub_byte_layers(const Graph& graph) {
  return layer_list(graph, [](const Node& n) { return n.weight_bits < 8; },
                    [](const Node& n) { return "w" + std::to_string(n.weight_bits); });
}

std::string general_grid_layers(const Graph& graph) {
  return layer_list(graph, [](const Node& n) { return n.general_grid(); },
                    [](const Node& n) { return n.policy.method; });
}

}  // namespace detail

ExportResult export_graph(const Graph& graph, const ExportOptions& options) {
  QNAS_CHECK(graph.calibrated, "export: the graph is not calibrated; expected calibrate() first");
  core::StagingDir staging(options.out_dir, options.overwrite);
  const std::string tmp = staging.path("");
  ExportResult r;
  r.dir = options.out_dir;
  switch (options.format) {
    case ExportFormat::kOnnx: r.files = detail::write_onnx(graph, tmp, r.warnings); break;
    case ExportFormat::kTorchScript: r.files = detail::write_torchscript(graph, tmp, r.warnings); break;
    case ExportFormat::kSafetensors: r.files = detail::write_safetensors(graph, options.spec, tmp); break;
  }
  if (options.format != ExportFormat::kSafetensors) {
    core::write_file_atomic(staging.path("spec.json"), options.spec.dump(2) + "\n");
    r.files.push_back("spec.json");
  }
  if (!options.class_names.empty()) {
    core::write_class_names(options.class_names, tmp);
    r.files.push_back("classes.json");
  }
  staging.commit();
  return r;
}

}  // namespace qnas::deploy
