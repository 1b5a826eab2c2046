#include "src/deploy/deployed_check.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "src/core/error.hpp"
#include "src/deploy/graph_names.hpp"
#include "src/quant/policy.hpp"

namespace qnas::deploy {

namespace {

using nlohmann::json;

constexpr int64_t kMaxInputElements = int64_t(1) << 24;  // one image's C*H*W
constexpr int64_t kMaxDim = int64_t(1) << 20;

// Field access that names the file, the place and the field in every error.
class Reader {
 public:
  Reader(std::string path, const SafetensorsFile& tensors) : path_(std::move(path)), tensors_(tensors) {}

  const json& field(const json& j, const std::string& key, const std::string& where) const {
    QNAS_CHECK(j.is_object(), path_, ": ", where, " is a JSON ", j.type_name(), "; expected an object");
    QNAS_CHECK(j.contains(key), path_, ": ", where, " has no '", key, "'");
    return j[key];
  }
  int64_t integer(const json& j, const std::string& key, const std::string& where, int64_t lo, int64_t hi) const {
    const auto& v = field(j, key, where);
    QNAS_CHECK(v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi, path_, ": ", where, ".", key,
               " = ", v.dump().substr(0, 40), "; expected an integer in [", lo, ", ", hi, "]");
    return v.get<int64_t>();
  }
  double number(const json& j, const std::string& key, const std::string& where) const {
    const auto& v = field(j, key, where);
    QNAS_CHECK(v.is_number() && std::isfinite(v.get<double>()), path_, ": ", where, ".", key, " = ",
               v.dump().substr(0, 40), "; expected a finite number");
    return v.get<double>();
  }
  bool boolean(const json& j, const std::string& key, const std::string& where) const {
    const auto& v = field(j, key, where);
    QNAS_CHECK(v.is_boolean(), path_, ": ", where, ".", key, " = ", v.dump().substr(0, 40), "; expected true or false");
    return v.get<bool>();
  }
  std::string string(const json& j, const std::string& key, const std::string& where) const {
    const auto& v = field(j, key, where);
    QNAS_CHECK(v.is_string(), path_, ": ", where, ".", key, " = ", v.dump().substr(0, 40), "; expected a string");
    return v.get<std::string>();
  }
  template <size_t N>
  size_t name(const json& j, const std::string& key, const std::string& where, const char* const (&names)[N]) const {
    const auto s = string(j, key, where);
    std::string expected;
    for (size_t i = 0; i < N; ++i) {
      if (s == names[i]) return i;
      expected += (i ? ", " : "") + std::string(names[i]);
    }
    QNAS_THROW(path_, ": ", where, ".", key, " = '", s.substr(0, 40), "'; expected one of ", expected);
  }
  const json& array(const json& j, const std::string& key, const std::string& where, size_t max_size) const {
    const auto& v = field(j, key, where);
    QNAS_CHECK(v.is_array() && v.size() <= max_size, path_, ": ", where, ".", key, " is a JSON ", v.type_name(),
               " of ", v.size(), "; expected an array of at most ", max_size);
    return v;
  }
  std::vector<int64_t> dims(const json& j, const std::string& key, const std::string& where) const {
    std::vector<int64_t> out;
    for (const auto& d : array(j, key, where, 4)) {
      QNAS_CHECK(d.is_number_integer() && d.get<int64_t>() >= 1 && d.get<int64_t>() <= kMaxDim, path_, ": ", where,
                 ".", key, " has dimension ", d.dump().substr(0, 40), "; expected integers in [1, ", kMaxDim, "]");
      out.push_back(d.get<int64_t>());
    }
    return out;
  }

  /// The tensor `name` with dtype `dtype` and `numel` elements (rank `rank` when >= 0).
  const SafetensorsEntry& tensor(const std::string& name, const std::string& dtype, int64_t numel, int rank = -1) const {
    const auto* e = tensors_.find(name);
    QNAS_CHECK(e, path_, ": model.safetensors has no tensor '", name, "'");
    QNAS_CHECK(e->dtype == dtype && (numel < 0 || e->numel() == numel) && (rank < 0 || int(e->shape.size()) == rank),
               "model.safetensors: tensor '", name, "' is ", e->dtype, " of ", e->numel(), " elements (rank ",
               e->shape.size(), "); ", path_, " needs ", dtype, (numel < 0 ? "" : " of " + std::to_string(numel) + " elements"),
               (rank < 0 ? "" : " of rank " + std::to_string(rank)));
    return *e;
  }
  bool has_tensor(const std::string& name) const { return tensors_.find(name) != nullptr; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const SafetensorsFile& tensors_;
};

struct ValueInfo {
  bool quantized = false;
  bool produced = false;
};

void check_input(const Reader& r, const json& in) {
  const std::string where = "graph.input";
  const int64_t c = r.integer(in, "channels", where, 1, 4096), h = r.integer(in, "height", where, 1, 65536),
                w = r.integer(in, "width", where, 1, 65536);
  QNAS_CHECK(c * h * w <= kMaxInputElements, r.path(), ": graph.input is ", c, "x", h, "x", w,
             "; expected at most ", kMaxInputElements, " elements per image");
  for (const char* key : {"mean", "std"}) {
    const auto& v = r.field(in, key, where);
    const json list = v.is_array() ? v : json::array({v});
    QNAS_CHECK(v.is_number() || (v.is_array() && int64_t(v.size()) == c), r.path(), ": graph.input.", key,
               " is ", v.type_name(), "; expected a number or one per channel (", c, ")");
    for (const auto& x : list)
      QNAS_CHECK(x.is_number() && std::isfinite(x.get<double>()) && (std::string(key) == "mean" || x.get<double>() > 0),
                 r.path(), ": graph.input.", key, " holds ", x.dump().substr(0, 40),
                 std::string(key) == "mean" ? "; expected finite numbers" : "; expected positive numbers");
  }
}

std::vector<ValueInfo> check_values(const Reader& r, const json& values) {
  std::vector<ValueInfo> out;
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    const std::string where = "graph.values[" + std::to_string(i) + "]";
    r.string(v, "name", where);
    const bool quantized = r.boolean(v, "quantized", where);
    r.name(v, "qsource", where, kQSourceNames);
    const double scale = r.number(v, "scale", where);
    QNAS_CHECK(scale > 0, r.path(), ": ", where, ".scale = ", scale, "; expected a positive number");
    r.integer(v, "zero_point", where, quantized ? 0 : INT32_MIN, quantized ? 255 : INT32_MAX);
    out.push_back({quantized, false});
  }
  return out;
}

// A conv or linear: its flags, geometry and tensors.
void check_layer(const Reader& r, const json& n, const std::string& name, OpKind kind, bool output_quantized,
                 const std::string& where) {
  const bool int8 = r.boolean(n, "int8", where);
  const bool dynamic = n.contains("dynamic") && r.boolean(n, "dynamic", where);
  const int bits = int(r.integer(n, "weight_bits", where, 1, 32));
  QNAS_CHECK(std::count(std::begin(quant::kLegalWeightBits), std::end(quant::kLegalWeightBits), bits), r.path(), ": ", where, ".weight_bits = ", bits,
             "; expected one of 2, 3, 4, 8, 32");
  const auto shape = r.dims(n, "weight_shape", where);
  QNAS_CHECK(shape.size() == (kind == OpKind::kConv ? 4u : 2u), r.path(), ": ", where, ".weight_shape has ",
             shape.size(), " dimensions; expected ", kind == OpKind::kConv ? 4 : 2, " for a ", op_name(kind));
  const int64_t out = shape[0];
  int64_t numel = 1;
  for (auto d : shape) {
    numel *= d;
    QNAS_CHECK(numel <= int64_t(1) << 40, r.path(), ": ", where, ".weight_shape is too large");
  }
  const int64_t groups = r.integer(n, "groups", where, 1, out);
  QNAS_CHECK(out % groups == 0, r.path(), ": ", where, ".groups = ", groups, " does not divide the ", out,
             " output channels");
  const int64_t kernel = kind == OpKind::kConv ? std::max(shape[2], shape[3]) : 1;
  r.integer(n, "stride", where, 1, 64);
  r.integer(n, "padding", where, 0, kernel);
  const bool general = n.contains("weight_group");
  QNAS_CHECK(!(int8 || dynamic) || (bits <= 8 && !general), r.path(), ": ", where, " runs on int8 kernels",
             " with weight_bits ", bits, general ? " on a general grid" : "", "; expected symmetric weights of <= 8 bits");
  QNAS_CHECK(!dynamic || kind == OpKind::kLinear, r.path(), ": ", where, " is dynamic; only a linear can be");
  QNAS_CHECK(!output_quantized || int8, r.path(), ": ", where, " writes a quantized value but is not int8");
  r.tensor(name + ".bias", "F32", out);
  if (bits == 32) {
    QNAS_CHECK(!general, r.path(), ": ", where, " has a weight_group at 32 bits");
    r.tensor(name + ".weight", "F32", numel);
    return;
  }
  r.tensor(name + ".weight", bits == 8 ? "I8" : "U8", bits == 8 ? numel : quant::packed_weight_bytes(numel, bits));
  if (!general) {
    r.tensor(name + ".weight_scale", "F32", out);
    return;
  }
  const int64_t columns = numel / out, group = r.integer(n, "weight_group", where, 1, columns);
  QNAS_CHECK(columns % group == 0, r.path(), ": ", where, ".weight_group = ", group, " does not divide the ", columns,
             " input columns");
  r.integer(n, "code_offset", where, 0, int64_t(1) << (bits - 1));
  r.tensor(name + ".weight_scale", "F32", out * (columns / group));
  r.tensor(name + ".weight_offset", "F32", out * (columns / group));
}

// Whatever a node of `kind` needs beyond its inputs and output.
void check_node_fields(const Reader& r, const json& n, const std::string& name, OpKind kind, bool output_quantized,
                       const std::string& where) {
  switch (kind) {
    case OpKind::kConv:
    case OpKind::kLinear: check_layer(r, n, name, kind, output_quantized, where); break;
    case OpKind::kScale: r.tensor(name + ".channel_scale", "F32", -1); break;
    case OpKind::kLayerNorm: {
      const auto& gamma = r.tensor(name + ".weight", "F32", -1, 1);
      r.tensor(name + ".bias", "F32", gamma.numel(), 1);
      break;
    }
    case OpKind::kEmbed: {
      const auto& pos = r.tensor(name + ".weight", "F32", -1, 2);
      if (r.has_tensor(name + ".bias")) r.tensor(name + ".bias", "F32", pos.shape[1], 1);
      break;
    }
    case OpKind::kAttention: {
      const int64_t heads = r.integer(n, "heads", where, 1, 4096), dim = r.integer(n, "head_dim", where, 1, 65536);
      QNAS_CHECK(heads * dim <= kMaxDim, r.path(), ": ", where, " has ", heads, " heads of ", dim, "; too wide");
      break;
    }
    default: break;
  }
}

size_t input_count(OpKind kind) { return kind == OpKind::kAdd || kind == OpKind::kMul ? 2 : 1; }

void check_nodes(const Reader& r, const json& nodes, std::vector<ValueInfo>& values) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    std::string where = "graph.nodes[" + std::to_string(i) + "]";
    const auto kind = OpKind(r.name(n, "kind", where, kOpKindNames));
    const auto name = r.string(n, "name", where);
    where += " ('" + name.substr(0, 80) + "')";
    r.name(n, "act", where, supernet::kActNames);
    const auto& inputs = r.array(n, "inputs", where, 2);
    QNAS_CHECK(inputs.size() == input_count(kind), r.path(), ": ", where, " has ", inputs.size(), " inputs; a ",
               op_name(kind), " takes ", input_count(kind));
    for (const auto& in : inputs) {
      QNAS_CHECK(in.is_number_integer() && in.get<int64_t>() >= 0 && in.get<int64_t>() < int64_t(values.size()) &&
                     values[size_t(in.get<int64_t>())].produced,
                 r.path(), ": ", where, " reads value ", in.dump().substr(0, 40),
                 "; expected the index of the input or of an earlier node's output");
    }
    const auto out = size_t(r.integer(n, "output", where, 0, int64_t(values.size()) - 1));
    QNAS_CHECK(!values[out].produced, r.path(), ": ", where, " writes value ", out, ", which is already written");
    const bool in_q = values[size_t(inputs[0].get<int64_t>())].quantized, out_q = values[out].quantized;
    QNAS_CHECK(kind != OpKind::kQuantize || (!in_q && out_q), r.path(), ": ", where,
               " quantizes; expected an fp32 input and a quantized output");
    QNAS_CHECK(kind != OpKind::kDequantize || (in_q && !out_q), r.path(), ": ", where,
               " dequantizes; expected a quantized input and an fp32 output");
    check_node_fields(r, n, name, kind, out_q, where);
    values[out].produced = true;
  }
}

}  // namespace

void check_deployed_format(const json& doc, const std::string& json_path) {
  QNAS_CHECK(doc.is_object(), json_path, ": a JSON ", doc.type_name(), "; expected a ", kDeployedFormat, " object");
  const auto format = doc.contains("format") && doc["format"].is_string() ? doc["format"].get<std::string>() : "?";
  const auto version = doc.contains("version") && doc["version"].is_number_integer() ? doc["version"].get<int64_t>() : 0;
  QNAS_CHECK(format == kDeployedFormat && version >= kOldestDeployedVersion && version <= kDeployedVersion, json_path,
             ": format ", format.substr(0, 40), " v", version, "; expected ", kDeployedFormat, " v",
             kOldestDeployedVersion, " to v", kDeployedVersion);
}

void check_deployed(const json& doc, const SafetensorsFile& tensors, const std::string& json_path) {
  check_deployed_format(doc, json_path);
  const Reader r(json_path, tensors);
  r.field(doc, "spec", "the document");
  const auto& g = r.field(doc, "graph", "the document");
  check_input(r, r.field(g, "input", "graph"));
  auto values = check_values(r, r.array(g, "values", "graph", 1 << 20));
  const int64_t last = int64_t(values.size()) - 1;
  const auto input = size_t(r.integer(r.field(g, "input", "graph"), "value", "graph.input", 0, last));
  QNAS_CHECK(!values[input].quantized, json_path, ": graph.input.value ", input, " is quantized; expected fp32 images");
  values[input].produced = true;
  check_nodes(r, r.array(g, "nodes", "graph", 1 << 20), values);
  const auto output = size_t(r.integer(g, "output", "graph", 0, last));
  QNAS_CHECK(values[output].produced && output != input && !values[output].quantized, json_path, ": graph.output ",
             output, "; expected an fp32 value some node writes");
}

}  // namespace qnas::deploy
