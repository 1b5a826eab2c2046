// bench_vit_int8: the largest subnet of a ViT supernet of the given shape
// (random weights: latency does not depend on them), its graph run in fp32
// and with every linear and the patch embedding on int8 kernels, side by
// side (interleaved rounds; speedup = median over rounds of fp32 / int8),
// at each batch; optionally the time per node kind. Until vit is a family
// with configs (then bench_int8_latency covers it), this is its int8 bench.
//
//   build/bench/bench_vit_int8 --embed 96 --depth 5 --heads 3 --mlp 4 --patch 7 --batch 1,64 --profile

#include <CLI/CLI.hpp>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cstdio>
#include <map>

#include "src/core/table.hpp"
#include "src/deploy/graph.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/simulate.hpp"
#include "src/eval/latency.hpp"
#include "supernet/vit.hpp"

using namespace qnas;

namespace {

struct Options {
  int embed = 96, depth = 5, heads = 3, mlp = 4, patch = 7, threads = 1;
  std::vector<int> batches{1, 64};
  bool profile = false;
  std::string format = "md";
};

deploy::Graph graph_of(supernet::ViTSupernetImpl& net, int bits) {
  quant::LayerPolicy p;
  p.weight_bits = bits;
  p.act_bits = bits;
  auto subnet = net.extract(supernet::largest_spec(net.space(), p));
  subnet->fold_bn();
  auto g = deploy::build_graph(*subnet, {1, 28, 28, {0.0}, {1.0}});
  deploy::calibrate(g, at::randn({256, 1, 28, 28}), 128);
  return g;
}

// Mean ms per node kind (and precision) over `runs` forwards.
void print_profile(const std::string& name, const deploy::Int8Model& m, const at::Tensor& x) {
  std::map<std::string, double> by_kind;
  double total = 0;
  for (const auto& r : m.profile(x, 20)) {
    const auto open = r.node.find(" (");
    by_kind[r.node.substr(open + 2, r.node.size() - open - 3)] += r.ms;
    total += r.ms;
  }
  std::fprintf(stderr, "\n# profile %s, batch %lld: %.3f ms\n", name.c_str(), (long long)x.size(0), total);
  for (const auto& [kind, ms] : by_kind) std::fprintf(stderr, "%8.3f ms  %5.1f%%  %s\n", ms, 100 * ms / total, kind.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_vit_int8: a ViT's largest subnet, all-int8 linears vs fp32"};
  Options o;
  app.add_option("--embed", o.embed, "embedding dimension");
  app.add_option("--depth", o.depth, "blocks");
  app.add_option("--heads", o.heads, "heads per block (head_dim 32)");
  app.add_option("--mlp", o.mlp, "MLP ratio");
  app.add_option("--patch", o.patch, "patch size (28x28 images)");
  app.add_option("--batch", o.batches, "batch sizes")->delimiter(',');
  app.add_option("--threads", o.threads, "LibTorch threads");
  app.add_flag("--profile", o.profile, "time per node kind on stderr");
  app.add_option("--format", o.format, "csv | json | md")->check(CLI::IsMember({"csv", "json", "md"}));
  CLI11_PARSE(app, argc, argv);

  torch::manual_seed(0);
  core::ViTConfig c;
  c.patch = o.patch;
  c.embed_dim = {o.embed};
  c.depth = {o.depth};
  c.heads = {o.heads};
  c.mlp_ratio = {o.mlp};
  supernet::ViTSupernetImpl net(c, core::QuantConfig{}, supernet::InputShape{1, 28, 28, 10});
  net.eval();
  c10::InferenceMode guard;
  const deploy::Int8Model fp32(graph_of(net, 32)), int8(graph_of(net, 8));

  core::LatencyConfig lat;
  lat.threads = o.threads;
  core::Table table({"batch", "fp32_ms", "int8_ms", "speedup"});
  for (int b : o.batches) {
    const auto x = at::randn({b, 1, 28, 28}).contiguous(at::MemoryFormat::ChannelsLast);
    lat.runs = b == 1 ? 200 : 30;
    const auto r = eval::measure_interleaved({[&](const at::Tensor& in) { return fp32.forward(in); },
                                              [&](const at::Tensor& in) { return int8.forward(in); }},
                                             x, lat);
    table.add({std::to_string(b), core::fixed(r.stats[0].median_ms, 3), core::fixed(r.stats[1].median_ms, 3),
                   core::fixed(1.0 / r.ratio(1).median_ms, 2)});
    if (o.profile) {
      at::set_num_threads(o.threads);
      print_profile("fp32", fp32, x);
      print_profile("int8", int8, x);
    }
  }
  std::printf("%s", table.render(o.format).c_str());
  return 0;
}
