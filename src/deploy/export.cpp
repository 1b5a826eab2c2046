#include "src/deploy/export.hpp"

#include <ATen/ATen.h>

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

std::string sub_byte_layers(const Graph& graph) {
  std::string out;
  for (const auto& n : graph.nodes)
    if (n.has_weight() && n.weight_bits < 8)
      out += (out.empty() ? "" : ", ") + n.name + " (w" + std::to_string(n.weight_bits) + ")";
  return out;
}

}  // namespace detail

ExportResult export_graph(const Graph& graph, const ExportOptions& options) {
  QNAS_CHECK(graph.calibrated, "export: the graph is not calibrated; expected calibrate() first");
  for (const auto& n : graph.nodes)
    QNAS_CHECK(!n.has_weight() || !n.general_grid(), "export: layer '", n.name, "' (", n.policy.method,
               ") holds its weights on a grouped or offset grid, which the exporters do not write yet; expected "
               "symmetric per-channel weights (rtn or gptq without group/sym parameters)");
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
  staging.commit();
  return r;
}

}  // namespace qnas::deploy
