#pragma once
// The writers behind export_graph() (deploy/export.hpp); each writes its
// files into `dir` (the staging folder) and returns their names.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "src/deploy/graph.hpp"

namespace qnas::deploy::detail {

std::vector<std::string> write_onnx(const Graph& graph, const std::string& dir, std::vector<std::string>& warnings);
std::vector<std::string> write_torchscript(const Graph& graph, const std::string& dir,
                                           std::vector<std::string>& warnings);
std::vector<std::string> write_safetensors(const Graph& graph, const nlohmann::json& spec, const std::string& dir);

/// The layers whose weights are below 8 bits, as "name (wN)" joined by ", ".
std::string sub_byte_layers(const Graph& graph);

/// The layers on a grouped or offset grid, as "name (method)" joined by ", ".
std::string general_grid_layers(const Graph& graph);

}  // namespace qnas::deploy::detail
