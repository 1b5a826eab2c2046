// Calibrated weight methods in the deployed graph: gptq and decoupleq layers
// lower each layer's output error below round-to-nearest's, deploy on the
// runtime, count group scales and offsets in model_bytes; bad method
// parameters are named.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "src/deploy/compress.hpp"
#include "src/deploy/export.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/smooth.hpp"
#include "src/quant/smoothquant.hpp"
#include "tests/deploy/deploy_fixture.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

struct Compressed {
  Deployed d;
  std::vector<deploy::LayerCompression> layers;
};

Compressed compress(const supernet::Supernet& net, const quant::LayerPolicy& p) {
  Compressed c{deploy_spec(net, supernet::largest_spec(net->space(), p)), {}};
  EXPECT_TRUE(deploy::needs_compression(c.d.graph));
  deploy::CompressSettings settings;
  settings.hessian_images = 128;
  settings.batch_size = 128;
  c.layers = deploy::compress_weights(c.d.graph, *c.d.subnet, batch(data().train, 256), settings);
  return c;
}

double max_relative_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / a.abs().max()).item<double>();
}

}  // namespace

TEST(Compress, GptqLowersEveryLayersErrorAndRunsOnInt8Kernels) {
  auto net = tiny_net();
  auto c = compress(net, method_policy("gptq", 4, 8));
  ASSERT_FALSE(c.layers.empty());
  double rtn = 0, gptq = 0;
  for (const auto& l : c.layers) {
    EXPECT_EQ(l.method, "gptq");
    EXPECT_LE(l.error, l.rtn_error * 1.0001) << l.layer;
    rtn += l.rtn_error, gptq += l.error;
  }
  EXPECT_LT(gptq, 0.9 * rtn);
  for (const auto& n : c.d.graph.nodes)
    if (n.has_weight()) {
      EXPECT_TRUE(n.int8 && !n.general_grid()) << n.name;
      EXPECT_LE(n.weight_codes.abs().max().item<int>(), 7) << n.name;
    }
  c10::InferenceMode guard;
  const auto x = batch(data().test, 128);
  deploy::Int8Model model(c.d.graph);
  EXPECT_LT(max_relative_diff(deploy::simulate(c.d.graph, x), model.forward(x)), 0.05);
}

TEST(Compress, DecoupleqRunsOnFp32KernelsAndCountsItsScalesAndOffsets) {
  auto net = tiny_net();
  auto c = compress(net, method_policy("decoupleq", 2, 32, {{"iterations", 3}, {"tune_steps", 0}}));
  int64_t expected = 0;
  for (const auto& n : c.d.graph.nodes) {
    if (!n.has_weight()) continue;
    const int64_t rows = n.weight.size(0), cols = n.weight.numel() / rows;
    EXPECT_TRUE(!n.int8 && n.general_grid() && n.weight_group == cols) << n.name;
    EXPECT_GE(n.weight_codes.min().item<int>(), 0);
    EXPECT_LE(n.weight_codes.max().item<int>(), 3);
    expected += (n.weight.numel() * 2 + 7) / 8 + 2 * 4 * rows + 4 * n.bias.numel();
  }
  EXPECT_EQ(c.d.graph.model_bytes(), expected);
  for (const auto& l : c.layers) EXPECT_LE(l.error, l.rtn_error) << l.layer;
  c10::InferenceMode guard;
  const auto x = batch(data().test, 128);
  deploy::Int8Model model(c.d.graph);
  EXPECT_LT(max_relative_diff(deploy::simulate(c.d.graph, x), model.forward(x)), 1e-4);
  TempDir dir("export");
  deploy::ExportOptions opts;
  opts.out_dir = dir.str() + "/x";
  const auto r = deploy::export_graph(c.d.graph, opts);  // onnx: dequantized fp32 weights, said in a warning
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_NE(r.warnings[1].find("stored dequantized as fp32"), std::string::npos) << r.warnings[1];
  EXPECT_NE(r.warnings[1].find("(decoupleq)"), std::string::npos) << r.warnings[1];
}

// decoupleQ's second stage: integers frozen, the float parts move, and the
// network's logits come closer to fp32's.
TEST(Compress, DecoupleqSecondStageKeepsCodesAndMovesTowardsFp32) {
  auto net = tiny_net();
  auto one = compress(net, method_policy("decoupleq", 2, 32, {{"iterations", 2}, {"tune_steps", 0}}));
  auto two = compress(net, method_policy("decoupleq", 2, 32, {{"iterations", 2}, {"tune_steps", 40}, {"tune_lr", 1e-3}}));
  int moved = 0;
  for (size_t k = 0; k < one.d.graph.nodes.size(); ++k) {
    const auto &a = one.d.graph.nodes[k], &b = two.d.graph.nodes[k];
    if (!a.has_weight()) continue;
    EXPECT_TRUE(a.weight_codes.equal(b.weight_codes)) << a.name;
    moved += !a.weight_scales.equal(b.weight_scales);
  }
  EXPECT_GT(moved, 0);
  c10::InferenceMode guard;
  const auto x = batch(data().test, 256);
  const auto fp32 = deploy::simulate(deploy_spec(net, supernet::largest_spec(net->space(), policy(32, 32))).graph, x);
  const auto err = [&](const deploy::Graph& g) { return (deploy::simulate(g, x) - fp32).pow(2).mean().item<double>(); };
  std::fprintf(stderr, "[ decoupleq ] logit mse vs fp32: stage one %.4g, with stage two %.4g\n", err(one.d.graph),
               err(two.d.graph));
  EXPECT_LT(err(two.d.graph), err(one.d.graph));
}

TEST(Compress, BadMethodParametersAreNamed) {
  auto net = tiny_net();
  // The tiny net's first layers have 1 x 3 x 3 = 9 input columns: a group of 4 cannot divide them.
  expect_error([&] { deploy_spec(net, supernet::largest_spec(net->space(), method_policy("rtn", 4, 8, {{"group", 4}}))); },
               {"layer 'stem'", "group size 4 does not divide"});
  expect_error([&] { method_policy("gptq", 32, 8); }, {"gptq quantizes weights; expected weight_bits <= 8"});
  expect_error([&] { method_policy("smoothquant", 8, 8, {{"alpha", 1.5}}); }, {"alpha 1.5; expected a value in [0, 1]"});
  expect_error([&] { method_policy("smoothquant", 4, 8); }, {"smoothquant is W8A8"});
  expect_error([&] { method_policy("gptq", 4, 8, {{"groups", 8}}); }, {"no parameter 'groups'", "group, sym, per_tensor, act_order, damp"});
  expect_error([&] { method_policy("awq", 4, 8); }, {"method 'awq'", "rtn, gptq, decoupleq, smoothquant"});
}

TEST(Compress, PercentileAndMseObserversCalibrateNarrowerRangesThatStillDeploy) {
  auto net = tiny_net();
  const auto base = deploy_spec(net, supernet::largest_spec(net->space(), policy(8, 8)));
  for (auto clip : {quant::Clip::kPercentile, quant::Clip::kMse}) {
    auto g = base.graph;
    quant::ActObserverSpec spec;
    spec.clip = clip;
    spec.percentile = 99.9;
    deploy::calibrate(g, batch(data().train, 256), 128, spec);
    int narrower = 0;
    for (size_t v = 0; v < g.values.size(); ++v) {
      if (!g.values[v].quantized || g.values[v].qsource != deploy::QSource::kObserved) continue;
      EXPECT_LE(g.values[v].q.scale, base.graph.values[v].q.scale * (1 + 1e-9)) << g.values[v].name;
      narrower += g.values[v].q.scale < base.graph.values[v].q.scale;
    }
    EXPECT_GT(narrower, 0);
    c10::InferenceMode guard;
    const auto x = batch(data().test, 128);
    if (!int8_checkable(g, "int8 vs simulation")) continue;
    deploy::Int8Model model(g);
    EXPECT_LT(max_relative_diff(deploy::simulate(g, x), model.forward(x)), 0.05);
  }
}

// Every layer's weight columns times s and its input divided by s (folded
// into the producer or by a scale node): the fp32 graph computes the same.
TEST(Compress, SmoothingDivisionKeepsTheFp32Function) {
  auto net = tiny_net();
  auto d = deploy_spec(net, supernet::largest_spec(net->space(), policy(32, 32)));
  c10::InferenceMode guard;
  const auto x = batch(data().test, 64);
  const auto before = deploy::simulate(d.graph, x);
  std::vector<std::string> layers;
  for (const auto& n : d.graph.nodes)
    if (n.has_weight()) layers.push_back(n.name);
  const auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  int folded = 0;
  for (const auto& name : layers) {
    auto& n = *std::find_if(d.graph.nodes.begin(), d.graph.nodes.end(),
                            [&](const deploy::Node& m) { return m.has_weight() && m.name == name; });
    const int64_t channels = n.groups == 1 ? n.weight.size(1) : n.groups;
    const auto s = at::exp(at::empty({channels}, at::kDouble).uniform_(-1.5, 1.5, gen));
    n.weight = quant::smooth_weight(n.weight, s, n.groups).to(at::kFloat);
    folded += deploy::divide_layer_input(d.graph, name, s);
  }
  int scale_nodes = 0;
  for (const auto& n : d.graph.nodes) scale_nodes += n.kind == deploy::OpKind::kScale;
  EXPECT_GT(folded, 0);
  EXPECT_GT(scale_nodes, 0);
  EXPECT_EQ(folded + scale_nodes, int(layers.size()));
  deploy::calibrate(d.graph, batch(data().train, 64), 64);
  EXPECT_LT(max_relative_diff(before, deploy::simulate(d.graph, x)), 1e-4);
}

TEST(Compress, SmoothquantRunsW8A8OnInt8KernelsWithItsScalesCounted) {
  auto net = tiny_net();
  auto c = compress(net, method_policy("smoothquant", 8, 8, {{"alpha", 0.5}}));
  EXPECT_TRUE(c.layers.empty());  // no weight-error report: the input changes too
  const auto plain = deploy_spec(net, supernet::largest_spec(net->space(), policy(8, 8)));
  int64_t scale_floats = 0;
  for (const auto& n : c.d.graph.nodes) {
    if (n.has_weight()) {
      EXPECT_TRUE(n.int8 && !n.general_grid()) << n.name;
    }
    if (n.kind != deploy::OpKind::kScale) continue;
    scale_floats += n.channel_scale.numel();
    EXPECT_FALSE(c.d.graph.values[size_t(n.output)].quantized);
  }
  EXPECT_GT(scale_floats, 0);
  EXPECT_EQ(c.d.graph.model_bytes(),
            plain.graph.model_bytes() + 4 * scale_floats + 5 * (c.d.graph.own_act_params() - plain.graph.own_act_params()));
  c10::InferenceMode guard;
  const auto x = batch(data().test, 128);
  const auto fp32 = deploy::simulate(deploy_spec(net, supernet::largest_spec(net->space(), policy(32, 32))).graph, x);
  const auto smooth = deploy::simulate(c.d.graph, x);
  std::fprintf(stderr, "[ smoothquant ] logit error vs fp32: plain W8A8 %.4g, smoothquant %.4g\n",
               max_relative_diff(fp32, deploy::simulate(plain.graph, x)), max_relative_diff(fp32, smooth));
  EXPECT_LT(max_relative_diff(fp32, smooth), 0.1);
  if (!int8_checkable(c.d.graph, "smoothquant int8 vs simulation")) return;
  deploy::Int8Model model(c.d.graph);
  EXPECT_LT(max_relative_diff(smooth, model.forward(x)), 0.05);
}

TEST(Compress, PerTensorGridsShareOneScalePerLayerAndRunOnInt8Kernels) {
  const auto net = trained_tiny_net();
  for (const auto& method : {"rtn", "gptq", "smoothquant"}) {
    const auto p = method_policy(method, 8, 8, {{"per_tensor", 1}});
    auto d = deploy_spec(net, supernet::largest_spec(net->space(), p));
    if (deploy::needs_compression(d.graph)) {
      deploy::CompressSettings settings;
      settings.hessian_images = 128;
      deploy::compress_weights(d.graph, *d.subnet, batch(data().train, 256), settings);
    }
    for (const auto& n : d.graph.nodes) {
      if (!n.has_weight() || n.weight_bits >= 32) continue;
      EXPECT_TRUE(n.int8) << method << " " << n.name;
      EXPECT_TRUE(at::equal(n.weight_scales, n.weight_scales[0].expand_as(n.weight_scales))) << method << " " << n.name;
    }
    c10::InferenceMode guard;
    const auto x = batch(data().test, 128);
    if (!int8_checkable(d.graph, std::string(method) + " int8 vs simulation")) continue;
    deploy::Int8Model model(d.graph);
    EXPECT_LT(max_relative_diff(deploy::simulate(d.graph, x), model.forward(x)), 0.05) << method;
  }
  expect_error([] { method_policy("rtn", 4, 8, {{"per_tensor", 1}, {"group", 8}}); }, {"one granularity"});
  expect_error([] { method_policy("decoupleq", 4, 32, {{"per_tensor", 1}}); }, {"no parameter 'per_tensor'"});
}
