#include "src/eval/latency_model.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"
#include "src/core/progress.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/latency.hpp"

namespace qnas::eval {

namespace {

// Bumped when what an entry means changes: older tables are then rebuilt.
// 2: segments are shares of the probe's latency as latency_ms measures it;
// 3: a transformer's weightless parts (attention, LayerNorm, embedding) are
// segments of their own.
constexpr int kTableVersion = 3;

std::string shape_key(const supernet::LayerInfo& l) {
  return l.kind + ":" + std::to_string(l.in_channels) + ">" + std::to_string(l.out_channels) + ":k" +
         std::to_string(l.kernel) + "s" + std::to_string(l.stride) + "g" + std::to_string(l.groups) + "@" +
         std::to_string(l.out_h) + "x" + std::to_string(l.out_w);
}

// Every choice the variables of `field` have, ascending; `fallback` when
// the space has no such variable.
std::vector<int> field_choices(const supernet::SpaceDesc& space, const std::string& field, int fallback) {
  std::set<int> out;
  for (const auto& v : space.variables)
    if (v.field == field) out.insert(v.choices.begin(), v.choices.end());
  if (out.empty()) out.insert(fallback);
  return {out.begin(), out.end()};
}

// One policy per precision class the space's choices produce.
std::vector<quant::LayerPolicy> class_representatives(const supernet::SpaceDesc& space) {
  std::vector<quant::LayerPolicy> out;
  std::set<std::string> seen;
  for (int w : field_choices(space, "weight_bits", 32))
    for (int a : space.couple_act_bits ? std::vector<int>{core::coupled_act_bits(w)} : field_choices(space, "act_bits", 32))
      for (const auto& m : space.methods) {
        const auto p = supernet::policy_with_method(w, a, m);
        if (seen.insert(precision_class(p)).second) out.push_back(p);
      }
  return out;
}

// Architectures whose layers take every shape the space can produce: every
// combination of one choice per architecture field other than depth (mbv3:
// each (kernel, expand)) set everywhere, at the largest and the smallest
// depths (which change what follows a stage's last block).
std::vector<supernet::SubnetSpec> probe_architectures(const supernet::SpaceDesc& space) {
  std::vector<std::string> fields;
  for (const auto& v : space.variables)
    if (!v.is_policy() && v.field != "depth" && std::find(fields.begin(), fields.end(), v.field) == fields.end())
      fields.push_back(v.field);
  std::vector<std::map<std::string, int>> combos{{}};
  for (const auto& field : fields) {
    std::vector<std::map<std::string, int>> next;
    for (const auto& c : combos)
      for (int choice : field_choices(space, field, 0)) {
        next.push_back(c);
        next.back()[field] = choice;
      }
    combos = std::move(next);
  }
  std::vector<supernet::SubnetSpec> out;
  for (bool deepest : {true, false})
    for (const auto& combo : combos) {
      std::map<std::string, int> values;
      for (const auto& v : space.variables) {
        const auto it = combo.find(v.field);
        const bool fits = it != combo.end() && std::count(v.choices.begin(), v.choices.end(), it->second);
        values[v.name] = fits ? it->second : deepest ? v.choices.back() : v.choices.front();
      }
      auto spec = supernet::with_uniform_policy(supernet::spec_from_values(space, values), {});
      if (std::find(out.begin(), out.end(), spec) == out.end()) out.push_back(spec);
    }
  return out;
}

// Uniform classes, then every ordered pair alternating layer by layer: each
// (previous, own) pair of classes occurs at every position.
std::vector<std::vector<quant::LayerPolicy>> probe_patterns(const std::vector<quant::LayerPolicy>& classes) {
  std::vector<std::vector<quant::LayerPolicy>> out;
  for (const auto& c : classes) out.push_back({c});
  for (size_t a = 0; a < classes.size(); ++a)
    for (size_t b = 0; b < classes.size(); ++b)
      if (a != b) out.push_back({classes[a], classes[b]});
  return out;
}

supernet::SubnetSpec with_pattern(supernet::SubnetSpec spec, const supernet::SpaceDesc& space,
                                  const std::vector<quant::LayerPolicy>& pattern) {
  size_t i = 0;
  for (const auto& layer : space.layers) {
    auto it = spec.policy.find(layer);
    if (it != spec.policy.end()) it->second = pattern[i++ % pattern.size()];
  }
  return spec;
}

// The layer a graph node computes (its own name, also for a transformer's
// weightless parts, or a factor's "<layer>.<part>"); empty for nodes that
// are not a layer's.
std::string layer_of(const deploy::Node& n, const std::set<std::string>& layers) {
  if (layers.count(n.name)) return n.name;
  if (!n.has_weight()) return "";
  for (auto pos = n.name.rfind('.'); pos != std::string::npos; pos = n.name.rfind('.', pos - 1)) {
    const auto prefix = n.name.substr(0, pos);
    if (layers.count(prefix)) return prefix;
    if (pos == 0) break;
  }
  return "";
}

// Per node: the median over `runs` timed passes (one untimed pass each:
// Int8Model::profile), at the latency config's thread count.
std::vector<double> node_medians(const deploy::Int8Model& model, const at::Tensor& x, const core::LatencyConfig& lc) {
  const int previous = at::get_num_threads();
  at::set_num_threads(lc.threads);
  std::vector<std::vector<double>> samples;
  for (int r = 0; r < lc.runs; ++r) {
    const auto t = model.profile(x, 1);
    samples.resize(t.size());
    for (size_t k = 0; k < t.size(); ++k) samples[k].push_back(t[k].ms);
  }
  at::set_num_threads(previous);
  std::vector<double> out;
  for (auto& s : samples) out.push_back(median(s));
  return out;
}

// Milliseconds of each layer's segment in one measured graph: its nodes and
// the nodes since the previous layer's; the nodes after the last layer
// (the output's Dequantize) go to the last layer.
std::map<std::string, double> segment_ms(const deploy::Graph& graph, const std::vector<double>& node_ms,
                                         const std::set<std::string>& layers) {
  std::map<std::string, double> out;
  double pending = 0;
  std::string last;
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    pending += node_ms[k];
    const auto layer = layer_of(graph.nodes[k], layers);
    if (layer.empty()) continue;
    out[layer] += pending;
    pending = 0;
    last = layer;
  }
  if (!last.empty()) out[last] += pending;
  return out;
}

// A cache file qnas wrote (`what` names it in errors).
nlohmann::json read_cache(const std::string& path, const char* what) {
  try {
    return nlohmann::json::parse(core::read_text_file(path, what));
  } catch (const nlohmann::json::exception& e) {
    QNAS_THROW(what, " '", path, "': not JSON (", e.what(), "); expected a file qnas wrote (delete it to remeasure)");
  }
}

nlohmann::json latency_identity(const core::LatencyConfig& lc) {
  return {{"batch_size", lc.batch_size}, {"threads", lc.threads}, {"warmup", lc.warmup},
          {"runs", lc.runs},             {"rounds", lc.rounds},   {"reference", lc.reference}};
}

nlohmann::json identity_of(const Evaluator& evaluator, const supernet::SpaceDesc& space,
                           const std::vector<quant::LayerPolicy>& classes, const nlohmann::json& host) {
  const auto& lc = evaluator.config().latency;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& c : classes) names.push_back(precision_class(c));
  return {{"version", kTableVersion},
          {"host", host},
          {"latency", latency_identity(lc)},
          // Entries are on the anchor's scale: a remeasured anchor remeasures them.
          {"anchor_ms", lc.reference == "none" ? 0.0 : evaluator.latency_anchor_ms()},
          {"structure_hash", space.structure_hash()},
          {"classes", names}};
}

nlohmann::json anchor_identity(const Evaluator& evaluator, const supernet::SpaceDesc& space, const nlohmann::json& host) {
  return {{"host", host},
          {"latency", latency_identity(evaluator.config().latency)},
          {"structure_hash", space.structure_hash()},
          {"reference", supernet::to_json(evaluator.latency_reference_spec())}};
}

}  // namespace

std::string precision_class(const quant::LayerPolicy& p) {
  const bool dynamic = p.param("dynamic", 0) == 1;
  std::string c = dynamic                                                   ? "dyn"
                  : p.weight_bits <= 8 && p.act_bits == 8 && !p.general_grid() ? "int8"
                  : p.act_bits == 8                                         ? "qin"
                                                                            : "fp32";
  if (p.factorizes()) c += "+cp";
  if (quant::method_traits(p.method).smooths_inputs && p.quantizes_weights()) c += "+smooth";
  return c;
}

nlohmann::json host_description() {
  std::string cpu = "unknown";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) != 0) name[0] = 0;
  return {{"cpu", cpu}, {"cores", int(std::thread::hardware_concurrency())}, {"hostname", std::string(name)}};
}

std::vector<std::string> segment_keys(const supernet::LayerInfo& layer, const supernet::LayerInfo* previous) {
  const std::string shape = shape_key(layer), own = precision_class(layer.policy);
  const std::string before = previous ? precision_class(previous->policy) : "input";
  return {layer.name + "|" + shape + "|" + own + "|" + before, shape + "|" + own + "|" + before, shape + "|" + own};
}

std::string LatencyModel::path_in(const std::string& dir) { return dir + "/latency_table.json"; }

LatencyModel LatencyModel::load_or_build(const Evaluator& evaluator, const supernet::SpaceDesc& space,
                                         const std::string& path, bool* measured, const LatencyModelOptions& options) {
  const auto classes = class_representatives(space);
  LatencyModel m;
  m.identity_ = identity_of(evaluator, space, classes, options.host);
  if (core::file_exists(path)) {
    const auto j = read_cache(path, "latency table");
    if (j.contains("identity") && j["identity"] == m.identity_ && j.contains("ms") && j["ms"].is_object()) {
      for (const auto& [key, ms] : j["ms"].items()) m.table_[key] = ms.get<double>();
      m.probes_ = j.value("probes", 0);
      if (measured) *measured = false;
      return m;
    }
    std::fprintf(stderr, "latency table %s: measured for another host, latency config or supernet; remeasuring\n",
                   path.c_str());
  }
  const auto archs = probe_architectures(space);
  const auto patterns = probe_patterns(classes);
  const auto& lc = evaluator.config().latency;
  const auto& images = evaluator.calibration_images();
  const at::Tensor x = images.narrow(0, 0, 1).repeat({lc.batch_size, 1, 1, 1}).contiguous(at::MemoryFormat::ChannelsLast);
  std::map<std::string, std::vector<double>> samples;
  core::Progress bar("latency table probe", int64_t(archs.size() * patterns.size()), "probe");
  int64_t done = 0;
  for (const auto& arch : archs) {
    const auto base = evaluator.prepare(arch);
    for (const auto& pattern : patterns) {
      const auto spec = with_pattern(arch, space, pattern);
      const auto p = evaluator.prepare(base.subnet, spec);
      const deploy::Int8Model model(p.graph);
      // The per-node profile says how the probe's time splits; its total is
      // the probe's latency as latency_ms measures it (which also warms up).
      const double total = evaluator.latency_of(model).median_ms;
      auto node_ms = node_medians(model, x, lc);
      double sum = 0;
      for (double v : node_ms) sum += v;
      for (double& v : node_ms) v *= sum > 0 ? total / sum : 0;
      const auto layers = p.subnet->layer_infos();
      std::set<std::string> names;
      for (const auto& l : layers) names.insert(l.name);
      const auto seg = segment_ms(p.graph, node_ms, names);
      for (size_t i = 0; i < layers.size(); ++i) {
        const auto it = seg.find(layers[i].name);
        if (it == seg.end()) continue;
        for (const auto& key : segment_keys(layers[i], i ? &layers[i - 1] : nullptr)) samples[key].push_back(it->second);
      }
      ++m.probes_;
      ++done;
      bar.update(done, done);
    }
  }
  bar.finish();
  nlohmann::json ms = nlohmann::json::object();
  for (const auto& [key, v] : samples) ms[key] = m.table_[key] = median(v);
  core::write_file_atomic(path, nlohmann::json{{"identity", m.identity_}, {"probes", m.probes_}, {"ms", ms}}.dump(1) + "\n");
  if (measured) *measured = true;
  return m;
}

double load_or_measure_anchor(Evaluator& evaluator, const supernet::SpaceDesc& space, const std::string& path,
                              bool write, bool* measured, const LatencyModelOptions& options) {
  if (measured) *measured = false;
  if (evaluator.config().latency.reference == "none") return 0;
  const auto identity = anchor_identity(evaluator, space, options.host);
  if (core::file_exists(path)) {
    const auto j = read_cache(path, "latency reference");
    if (j.contains("identity") && j["identity"] == identity && j.contains("ms") && j["ms"].is_number() &&
        j["ms"].get<double>() > 0) {
      evaluator.set_latency_anchor_ms(j["ms"].get<double>());
      return j["ms"].get<double>();
    }
    std::fprintf(stderr, "latency reference %s: measured for another host, latency config or supernet; remeasuring\n",
                 path.c_str());
  }
  const double ms = evaluator.latency_anchor_ms();
  if (measured) *measured = true;
  if (write) core::write_file_atomic(path, nlohmann::json{{"identity", identity}, {"ms", ms}}.dump(1) + "\n");
  return ms;
}

std::string anchor_path_in(const std::string& dir) { return dir + "/latency_reference.json"; }

LatencyEstimate LatencyModel::estimate(const std::vector<supernet::LayerInfo>& layers) const {
  LatencyEstimate e;
  for (size_t i = 0; i < layers.size(); ++i) {
    LatencyItem item{layers[i].name, "", 0};
    for (const auto& key : segment_keys(layers[i], i ? &layers[i - 1] : nullptr)) {
      const auto it = table_.find(key);
      if (it == table_.end()) continue;
      item.key = key;
      item.ms = it->second;
      break;
    }
    if (item.key.empty()) ++e.unmodelled;
    e.ms += item.ms;
    e.items.push_back(std::move(item));
  }
  return e;
}

}  // namespace qnas::eval
