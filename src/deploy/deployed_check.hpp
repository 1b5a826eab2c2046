#pragma once
// The checks load_deployed() runs on an export folder before it reads a
// tensor: subnet.json's graph against itself and against model.safetensors'
// header. No LibTorch here, so the fuzz target builds without it.

#include <nlohmann/json.hpp>

#include <string>

#include "src/deploy/safetensors.hpp"

namespace qnas::deploy {

/// The subnet.json format this build writes, and the oldest it reads.
inline constexpr const char* kDeployedFormat = "qnas-deployed-graph";
inline constexpr int kDeployedVersion = 4;  // 2: conv padding; 3: transformer nodes; 4: mean/std per channel
inline constexpr int kOldestDeployedVersion = 2;

/// Throws naming `json_path` unless `doc` is a subnet.json object of a
/// format version this build reads.
void check_deployed_format(const nlohmann::json& doc, const std::string& json_path);

/// Throws qnas::Error naming `json_path` (or the safetensors file), the node
/// or value and the field unless `doc` is a subnet.json this build reads and
/// its graph is sound: every field of the right type and range; values
/// referenced by index within the graph, each produced once, before it is
/// read; the input shape and normalisation sensible; each layer's precision
/// flags consistent with its bit-width and output; and every tensor a node
/// needs present in `tensors` with the dtype and element count its
/// weight_shape and bit-width imply.
void check_deployed(const nlohmann::json& doc, const SafetensorsFile& tensors, const std::string& json_path);

}  // namespace qnas::deploy
