// bench_int8_latency: the same BN-folded graph of one subnet run in fp32 and
// on int8 kernels (ONEDNN), side by side in one run, at batch 1 and at the
// throughput batch, the variants timed interleaved in rounds as qnas eval
// and search time a candidate against their reference (speedup: the median
// over rounds of the baseline's time over the variant's), with model_bytes
// (and the weights alone); the int8
// model's ONNX export timed in ONNX Runtime (tests/node/run_onnx.js) beside
// ours; optionally per-node profiles.
//
//   build/bench/bench_int8_latency configs/quickstart.yaml --subnet largest --format md
//   build/bench/bench_int8_latency configs/resnet_quickstart.yaml --format md   (any family: its config's supernet.kind)
//   build/bench/bench_int8_latency configs/quickstart.yaml --profile

#include <CLI/CLI.hpp>

#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "src/core/error.hpp"
#include "src/core/table.hpp"
#include "src/deploy/export.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/latency.hpp"
#include "src/eval/session.hpp"
#include "src/quant/policy.hpp"
#include "supernet/checkpoint.hpp"

using namespace qnas;

namespace {

struct Variant {
  std::string name;
  eval::Prepared prepared;
  std::unique_ptr<deploy::Int8Model> model;
};

void print_profile(const Variant& v, const at::Tensor& x, int runs) {
  const auto rows = v.model->profile(x, runs);
  double total = 0;
  for (const auto& r : rows) total += r.ms;
  std::fprintf(stderr, "\n# profile %s, batch %lld: %.3f ms\n", v.name.c_str(), (long long)x.size(0), total);
  for (const auto& r : rows)
    std::fprintf(stderr, "%8.4f ms  %5.1f%%  %-4s  %s\n", r.ms, 100 * r.ms / total, r.layout.c_str(), r.node.c_str());
}

// Bytes of the weights alone, packed at their bit-width (no scales, biases
// or activation parameters): the count papers often call model size.
int64_t weight_bytes(const deploy::Graph& g) {
  int64_t b = 0;
  for (const auto& n : g.nodes)
    if (n.has_weight()) b += quant::packed_weight_bytes(n.weight.numel(), n.weight_bits);
  return b;
}

// ONNX Runtime's median latency (ms) of an exported model, or -1 when
// tests/node has no onnxruntime-node (scripts/install-deps.sh installs it).
double ort_latency_ms(const std::string& model, int64_t batch, const core::LatencyConfig& lc) {
  const std::string runner = std::string(QNAS_SOURCE_DIR) + "/tests/node/run_onnx.js";
  const std::string cmd = "node " + runner + " " + model + " --bench " + std::to_string(batch) + ",1,28,28 " +
                          std::to_string(lc.warmup) + " " + std::to_string(lc.runs) + " " + std::to_string(lc.threads) +
                          " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (pclose(pipe) != 0) return -1;
  return nlohmann::json::parse(out).at("median_ms").get<double>();
}

// Quantize and Dequantize nodes: the precision changes between neighbours.
int conversions(const deploy::Graph& g) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.converts_precision();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fp32 vs int8 latency of one deployed subnet"};
  std::string config_path, subnet = "largest", format = "md";
  std::vector<std::string> sets, bits_list{"32", "8/8", "4/8"}, spec_files;
  int threads = 1, warmup = -1, runs = -1, rounds = -1;
  bool profile = false, no_ort = false;
  app.add_option("config", config_path, "qnas YAML config (its output.dir holds the checkpoint)")->required();
  app.add_option("--set", sets, "config overrides")->take_all();
  app.add_option("--subnet", subnet, "largest | smallest | SPEC.json")->capture_default_str();
  app.add_option("--bits", bits_list, "uniform policies to compare; the first is the baseline")->capture_default_str();
  app.add_option("--spec", spec_files, "more variants: spec JSON files, each with its own per-layer policy")->take_all();
  app.add_option("--threads", threads, "LibTorch threads")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed runs (default: the config's latency.warmup, as qnas eval and search)");
  app.add_option("--runs", runs, "timed runs (default: the config's latency.runs)");
  app.add_option("--rounds", rounds, "rounds the runs are interleaved in (default: the config's latency.rounds)");
  app.add_option("--format", format, "text | csv | md | json")->capture_default_str();
  app.add_flag("--profile", profile, "per-node times on stderr");
  app.add_flag("--no-ort", no_ort, "skip the ONNX Runtime rows");
  CLI11_PARSE(app, argc, argv);
  try {
    const auto cfg = core::load_config(config_path, sets);
    auto session = eval::open_session(cfg, supernet::checkpoint_path(cfg.output.dir));
    eval::Evaluator evaluator(cfg, session.net, session.data);
    std::vector<Variant> variants;
    for (const auto& b : bits_list) {
      const auto spec = eval::choose_subnet(session.net->space(), subnet, eval::parse_bits(b), cfg.seed);
      Variant v{b == "32" ? "fp32" : "w" + b, evaluator.prepare(spec), nullptr};
      v.model = std::make_unique<deploy::Int8Model>(v.prepared.graph);
      variants.push_back(std::move(v));
    }
    for (const auto& file : spec_files) {
      Variant v{std::filesystem::path(file).stem().string(), evaluator.prepare(supernet::load_spec(file)), nullptr};
      v.model = std::make_unique<deploy::Int8Model>(v.prepared.graph);
      variants.push_back(std::move(v));
    }
    core::LatencyConfig lc = cfg.latency;
    lc.threads = threads;
    if (warmup >= 0) lc.warmup = warmup;
    if (runs >= 0) lc.runs = runs;
    if (rounds >= 1) lc.rounds = rounds;
    const auto image = session.data.test.images(0, 1);
    const std::string family = cfg.supernet.kind;
    core::Table t({"family", "model", "runtime", "threads", "batch", "latency_ms", "p10_ms", "p90_ms", "img_s", "speedup",
                   "model_bytes", "size_ratio", "weight_bytes", "int8_layers", "fp32_layers", "qdq_nodes"});
    // The second variant (all-int8 by default) exported to ONNX for ONNX Runtime.
    const std::string onnx_dir = (std::filesystem::temp_directory_path() / ("qnas_bench_onnx_" + std::to_string(getpid()))).string();
    bool have_onnx = false;
    if (!no_ort && variants.size() > 1) {
      deploy::ExportOptions eo;
      eo.out_dir = onnx_dir;
      deploy::export_graph(variants[1].prepared.graph, eo);
      have_onnx = true;
    }
    for (int64_t batch : {lc.batch_size, lc.throughput_batch}) {
      if (batch <= 0) continue;  // latency.throughput_batch: 0 = off
      const auto x = image.repeat({batch, 1, 1, 1}).contiguous(at::MemoryFormat::ChannelsLast);
      const double base_bytes = double(variants[0].prepared.graph.model_bytes());
      std::vector<eval::TimedForward> forwards;
      for (const auto& v : variants) forwards.push_back([&v](const at::Tensor& in) { return v.model->forward(in); });
      const auto timed = eval::measure_interleaved(forwards, x, lc);
      for (size_t i = 0; i < variants.size(); ++i) {
        const auto& v = variants[i];
        const auto& s = timed.stats[i];
        const double speedup = 1.0 / timed.ratio(i).median_ms;
        const double bytes = double(v.prepared.graph.model_bytes());
        t.add({family, v.name, "qnas", std::to_string(threads), std::to_string(batch), core::fixed(s.median_ms, 3),
               core::fixed(s.p10_ms, 3), core::fixed(s.p90_ms, 3), core::fixed(1000.0 * double(batch) / s.median_ms, 0),
               core::fixed(speedup, 2), std::to_string(int64_t(bytes)), core::fixed(base_bytes / bytes, 2),
               std::to_string(weight_bytes(v.prepared.graph)), std::to_string(v.model->int8_layers()),
               std::to_string(v.model->fp32_layers()), std::to_string(conversions(v.prepared.graph))});
        if (profile) {
          at::set_num_threads(threads);
          c10::InferenceMode guard;
          print_profile(v, x, runs);
        }
        if (have_onnx && i == 1) {
          const double ms = ort_latency_ms(onnx_dir + "/model.onnx", batch, lc);
          if (ms > 0)
            t.add({family, v.name, "onnxruntime", std::to_string(threads), std::to_string(batch), core::fixed(ms, 3),
                   "", "", core::fixed(1000.0 * double(batch) / ms, 0), core::fixed(timed.stats[0].median_ms / ms, 2),
                   "", "", "", "", "", ""});
          else
            std::fprintf(stderr, "bench_int8_latency: ONNX Runtime not available (scripts/install-deps.sh installs it)\n");
        }
      }
    }
    std::filesystem::remove_all(onnx_dir);
    std::printf("%s", t.render(format).c_str());
  } catch (const qnas::Error& e) {
    std::fprintf(stderr, "bench_int8_latency: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
