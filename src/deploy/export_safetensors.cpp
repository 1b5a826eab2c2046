// safetensors + subnet.json: the deployed graph as data. model.safetensors
// holds each layer's weights at their stored dtype (F32; I8 codes; U8 packed
// codes below 8 bits), per-channel F32 scales (per group, with F32 offsets,
// on a general grid), F32 biases, scale nodes' F32 factors and the F32
// parameters of embed and LayerNorm nodes; subnet.json
// holds the spec, the graph (values with their activation scales and zero
// points, nodes in execution order) and the input normalisation.
#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <map>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/deploy/export.hpp"
#include "src/deploy/deployed_check.hpp"
#include "src/deploy/export_formats.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/safetensors.hpp"
#include "src/deploy/simulate.hpp"
#include "src/quant/fake_quant.hpp"
#include "src/quant/grid.hpp"
#include "src/quant/hessian.hpp"
#include "src/quant/packing.hpp"

namespace qnas::deploy {

namespace {

using nlohmann::json;

// ---- safetensors container ---------------------------------------------------

const std::map<std::string, at::ScalarType>& dtypes() {
  static const std::map<std::string, at::ScalarType> m{
      {"F32", at::kFloat}, {"I8", at::kChar}, {"U8", at::kByte}, {"I32", at::kInt}, {"I64", at::kLong}};
  return m;
}

std::string dtype_name(at::ScalarType t) {
  for (const auto& [name, type] : dtypes())
    if (type == t) return name;
  QNAS_THROW("safetensors: no dtype name for ", t);
}

void write_container(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<SafetensorsEntry> entries;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    entries.push_back({name, dtype_name(t.scalar_type()), t.sizes().vec(), offset, offset + t.nbytes()});
    offset += t.nbytes();
  }
  std::ofstream out(path, std::ios::binary);
  const std::string header = safetensors_header({{"format", kDeployedFormat}}, entries);
  out.write(header.data(), std::streamsize(header.size()));
  for (const auto& [name, t] : tensors) {
    const auto c = t.contiguous();
    out.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.nbytes()));
  }
  QNAS_CHECK(out.good(), "safetensors: cannot write '", path, "'");
}

// The tensors of a checked container, copied out of the file's bytes.
std::map<std::string, at::Tensor> read_tensors(const std::string& bytes, const SafetensorsFile& file) {
  std::map<std::string, at::Tensor> out;
  for (const auto& e : file.tensors) {
    auto t = at::empty(e.shape, dtypes().at(e.dtype));
    std::memcpy(t.data_ptr(), bytes.data() + file.data_start + e.begin, e.end - e.begin);
    out[e.name] = t;
  }
  return out;
}

// ---- the graph as JSON ----------------------------------------------------------

template <class Enum, size_t N>
Enum parse_name(const std::string& s, const std::array<Enum, N>& all, const char* (*name)(Enum), const char* what) {
  std::string expected;
  for (auto e : all) {
    if (s == name(e)) return e;
    expected += (expected.empty() ? "" : ", ") + std::string(name(e));
  }
  QNAS_THROW("subnet.json: ", what, " '", s, "'; expected one of ", expected);
}

std::array<QSource, kQSourceCount> all_qsources() {
  std::array<QSource, kQSourceCount> out{};
  for (size_t i = 0; i < kQSourceCount; ++i) out[i] = QSource(i);
  return out;
}

// 2^(b-1) when a general grid's codes are unsigned, 0 when they are signed.
int64_t code_offset(const Node& n) {
  return n.weight_codes.min().item<int64_t>() >= 0 ? int64_t(1) << (n.weight_bits - 1) : 0;
}

json graph_json(const Graph& g) {
  json values = json::array(), nodes = json::array();
  for (const auto& v : g.values)
    values.push_back({{"name", v.name}, {"quantized", v.quantized}, {"qsource", qsource_name(v.qsource)},
                      {"scale", v.q.scale}, {"zero_point", v.q.zero_point}});
  for (const auto& n : g.nodes) {
    json j = {{"kind", op_name(n.kind)}, {"name", n.name}, {"inputs", n.inputs}, {"output", n.output},
              {"act", supernet::act_name(n.act)}};
    if (n.has_weight())
      j.update({{"int8", n.int8}, {"dynamic", n.dynamic}, {"weight_bits", n.weight_bits}, {"stride", n.stride}, {"padding", n.padding}, {"groups", n.groups},
                {"weight_shape", n.weight.sizes().vec()}});
    if (n.has_weight() && n.general_grid())
      j.update({{"weight_group", n.weight_group}, {"code_offset", code_offset(n)}});
    if (n.kind == OpKind::kAttention) j.update({{"heads", n.heads}, {"head_dim", n.head_dim}});
    nodes.push_back(j);
  }
  const auto& in = g.input_desc;
  return {{"input", {{"channels", in.channels}, {"height", in.height}, {"width", in.width}, {"mean", in.mean},
                     {"std", in.std}, {"value", g.input}}},
          {"output", g.output}, {"values", values}, {"nodes", nodes}};
}

// The stored tensors of one layer. Codes of a general grid are stored minus
// code_offset (asymmetric codes 0..2^b-1 -> two's complement) and come with
// an fp32 scale and offset per (output channel, group).
void layer_tensors(const Node& n, std::vector<std::pair<std::string, at::Tensor>>& out) {
  if (n.weight_bits >= 32) {
    out.emplace_back(n.name + ".weight", n.weight.to(at::kFloat));
  } else {
    const auto codes = (n.weight_codes.to(at::kInt) - (n.general_grid() ? code_offset(n) : 0)).to(at::kChar);
    out.emplace_back(n.name + ".weight", n.weight_bits == 8 ? codes : quant::pack_codes(codes, n.weight_bits));
    out.emplace_back(n.name + ".weight_scale", n.weight_scales.to(at::kFloat));
    if (n.general_grid()) out.emplace_back(n.name + ".weight_offset", n.weight_zeros.to(at::kFloat));
  }
  out.emplace_back(n.name + ".bias", n.bias.to(at::kFloat));
}

const at::Tensor& tensor(const std::map<std::string, at::Tensor>& ts, const std::string& name) {
  auto it = ts.find(name);
  QNAS_CHECK(it != ts.end(), "model.safetensors: no tensor '", name, "'; expected it for layer weights");
  return it->second;
}

// An embed or LayerNorm node's fp32 parameters (an embed without a class
// token has no bias).
void param_tensors(const Node& n, std::vector<std::pair<std::string, at::Tensor>>& out) {
  out.emplace_back(n.name + ".weight", n.weight);
  if (n.bias.defined()) out.emplace_back(n.name + ".bias", n.bias);
}

void load_params(Node& n, const std::map<std::string, at::Tensor>& ts) {
  n.weight = tensor(ts, n.name + ".weight");
  if (n.kind == OpKind::kLayerNorm || ts.count(n.name + ".bias")) n.bias = tensor(ts, n.name + ".bias");
}

void load_layer(Node& n, const json& j, const std::map<std::string, at::Tensor>& ts) {
  n.int8 = j.at("int8").get<bool>();
  n.dynamic = j.value("dynamic", false);  // exports before dynamic layers existed have none
  n.weight_bits = j.at("weight_bits").get<int>();
  n.stride = j.at("stride").get<int64_t>();
  n.padding = j.at("padding").get<int64_t>();
  n.groups = j.at("groups").get<int64_t>();
  const auto shape = j.at("weight_shape").get<std::vector<int64_t>>();
  n.bias = tensor(ts, n.name + ".bias").reshape({shape[0]});
  if (n.weight_bits >= 32) {
    n.weight = tensor(ts, n.name + ".weight").reshape(shape);
    return;
  }
  const auto& stored = tensor(ts, n.name + ".weight");
  const int64_t numel = c10::multiply_integers(shape);
  n.weight_codes = (n.weight_bits == 8 ? stored : quant::unpack_codes(stored, numel, n.weight_bits)).reshape(shape);
  // Per output channel, or [out, groups] on a general grid.
  const auto grids = j.contains("weight_group") ? std::vector<int64_t>{shape[0], -1} : std::vector<int64_t>{shape[0]};
  n.weight_scales = tensor(ts, n.name + ".weight_scale").reshape(grids).to(at::kDouble);
  if (!j.contains("weight_group")) {
    n.weight = quant::dequantize_weight_codes(n.weight_codes, n.weight_scales);
    return;
  }
  quant::Grid grid;
  grid.bits = n.weight_bits;
  grid.group_size = j.at("weight_group").get<int64_t>();
  grid.scale = n.weight_scales;
  grid.zero = tensor(ts, n.name + ".weight_offset").reshape(grids).to(at::kDouble);
  n.weight_codes = n.weight_codes.to(at::kInt) + j.at("code_offset").get<int64_t>();
  n.weight_zeros = grid.zero;
  n.weight_group = grid.group_size;
  n.weight = quant::grid_dequantize(quant::as_matrix(n.weight_codes), grid).to(at::kFloat).reshape(shape).contiguous();
}

// The checks cannot see every shape a node passes on (a conv's input
// channels against its producer's output, an add's two operands): one image
// through the simulation and the int8 runtime finds what LibTorch refuses.
void check_runs(const Graph& g, const std::string& dir) {
  const auto& in = g.input_desc;
  const auto x = at::zeros({1, in.channels, in.height, in.width}).contiguous(at::MemoryFormat::ChannelsLast);
  try {
    const auto logits = simulate(g, x);
    QNAS_CHECK(logits.dim() == 2 && logits.size(0) == 1, "'", dir, "': the model's output is ", logits.sizes(),
               " for one image; expected logits [1, classes]");
    use_onednn_engine();
    Int8Model(g).forward(x);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    QNAS_THROW("'", dir, "': the model does not run on one image (", what.substr(0, what.find('\n')), ")");
  }
}

}  // namespace

namespace detail {

std::vector<std::string> write_safetensors(const Graph& g, const json& spec, const std::string& dir) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& n : g.nodes) {
    if (n.has_weight()) layer_tensors(n, tensors);
    if (n.kind == OpKind::kScale) tensors.emplace_back(n.name + ".channel_scale", n.channel_scale);
    if (n.has_params()) param_tensors(n, tensors);
  }
  write_container(dir + "/model.safetensors", tensors);
  json doc = {{"format", kDeployedFormat}, {"version", kDeployedVersion}, {"spec", spec}, {"model_bytes", g.model_bytes()},
              {"graph", graph_json(g)}};
  core::write_file_atomic(dir + "/subnet.json", doc.dump(2) + "\n");
  return {"model.safetensors", "subnet.json"};
}

}  // namespace detail

DeployedExport load_deployed(const std::string& dir) {
  const std::string json_path = dir + "/subnet.json", tensors_path = dir + "/model.safetensors";
  const json doc = json::parse(core::read_text_file(json_path, "subnet.json"), nullptr, /*allow_exceptions=*/false);
  QNAS_CHECK(!doc.is_discarded(), json_path, ": not JSON; expected a ", kDeployedFormat, " document");
  check_deployed_format(doc, json_path);
  const std::string bytes = core::read_text_file(tensors_path, "safetensors file");
  const auto file = parse_safetensors(bytes, tensors_path);
  check_deployed(doc, file, json_path);
  const auto tensors = read_tensors(bytes, file);
  DeployedExport out;
  out.spec = doc.at("spec");
  Graph& g = out.graph;
  try {
    const auto& gj = doc.at("graph");
    const auto& in = gj.at("input");
    // Before v4 mean and std were one number for every channel.
    const auto per_channel = [&](const json& v) {
      return v.is_array() ? v.get<std::vector<double>>()
                          : std::vector<double>(size_t(in.at("channels").get<int64_t>()), v.get<double>());
    };
    g.input_desc = {in.at("channels"), in.at("height"), in.at("width"), per_channel(in.at("mean")),
                    per_channel(in.at("std"))};
    g.input = in.at("value");
    g.output = gj.at("output");
    for (const auto& vj : gj.at("values")) {
      Value v;
      v.name = vj.at("name");
      v.quantized = vj.at("quantized");
      v.qsource = parse_name(vj.at("qsource").get<std::string>(), all_qsources(), qsource_name, "qsource");
      v.q = {vj.at("scale").get<double>(), vj.at("zero_point").get<int64_t>()};
      g.values.push_back(v);
    }
    for (const auto& nj : gj.at("nodes")) {
      Node n;
      n.kind = parse_name(nj.at("kind").get<std::string>(), all_op_kinds(), op_name, "node kind");
      n.name = nj.at("name");
      n.inputs = nj.at("inputs").get<std::vector<int>>();
      n.output = nj.at("output");
      n.act = parse_name(nj.at("act").get<std::string>(), supernet::all_acts(), supernet::act_name, "activation");
      if (n.has_weight()) load_layer(n, nj, tensors);
      if (n.kind == OpKind::kScale) n.channel_scale = tensor(tensors, n.name + ".channel_scale");
      if (n.has_params()) load_params(n, tensors);
      if (n.kind == OpKind::kAttention) {
        n.heads = nj.at("heads").get<int64_t>();
        n.head_dim = nj.at("head_dim").get<int64_t>();
      }
      g.nodes.push_back(std::move(n));
    }
  } catch (const json::exception& e) {
    QNAS_THROW("'", json_path, "': malformed graph (", e.what(), ")");
  }
  g.calibrated = true;
  check_runs(g, dir);
  return out;
}

}  // namespace qnas::deploy
