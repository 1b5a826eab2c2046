// What the vit family's deployment adds to the conformance suite (which runs
// it on every consumer: tests/families): the fp32 graph computes the subnet
// and stores every parameter, GELU runs on its linear's quantized grid, and
// SmoothQuant folds into LayerNorm without changing the function.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <set>

#include "src/deploy/compress.hpp"
#include "src/deploy/smooth.hpp"
#include "src/eval/metrics.hpp"
#include "supernet/vit.hpp"
#include "tests/deploy/deploy_fixture.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

// The family's tiny instance (supernet/vit.cpp: 7x7 patches, 16 tokens and a
// class token) with every parameter moved off its initial value (LayerNorm's
// ones and zeros, zero biases would hide a wrong slice).
supernet::Supernet randomised_vit(const std::string& pool) {
  auto cfg = tiny_config("", "vit");
  cfg.supernet.vit.pool = pool;
  torch::manual_seed(0);
  auto net = supernet::make_supernet(cfg, {1, 28, 28, 10});
  at::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.add_(at::randn_like(p) * 0.1);
  net->eval();
  return net;
}


quant::LayerPolicy smoothquant() {
  auto p = policy(8, 8);
  p.method = "smoothquant";
  p.params = {{"alpha", 0.5}};
  return p;
}

int count(const deploy::Graph& g, deploy::OpKind kind) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.kind == kind;
  return n;
}

deploy::Node& node(deploy::Graph& g, const std::string& name) {
  return *std::find_if(g.nodes.begin(), g.nodes.end(), [&](const deploy::Node& n) { return n.name == name; });
}

}  // namespace

TEST(ViTDeploy, Fp32GraphComputesTheSubnetAndStoresEveryParameter) {
  for (const char* pool : {"cls", "mean"}) {
    auto net = randomised_vit(pool);
    core::Rng rng(3);
    for (int t = 0; t < 3; ++t) {
      const auto spec = t == 0 ? supernet::largest_spec(net->space()) : supernet::random_spec(net->space(), rng, false);
      auto d = deploy_spec(net, spec);
      EXPECT_EQ(count(d.graph, deploy::OpKind::kAttention), spec.arch.at("s0.depth")) << pool;
      EXPECT_EQ(count(d.graph, deploy::OpKind::kQuantize), 0) << pool;
      const auto x = batch(data().test, 32);
      at::Tensor expected;
      {
        at::NoGradGuard no_grad;
        expected = d.subnet->forward(x);
      }
      const auto simulated = deploy::simulate(d.graph, x), run = deployed_logits(d.graph, raw_pixels(32));
      EXPECT_TRUE(at::allclose(simulated, expected, 1e-4, 1e-5))
          << pool << ": max diff " << (simulated - expected).abs().max().item<float>();
      EXPECT_TRUE(at::allclose(run, expected, 1e-4, 1e-4)) << pool << ": max diff " << (run - expected).abs().max().item<float>();
      // An fp32 export stores every parameter of the subnet at 4 bytes:
      // weights, biases, LayerNorms, positions and the class token.
      int64_t params = 0;
      for (const auto& p : d.subnet->parameters()) params += p.numel();
      EXPECT_EQ(d.graph.model_bytes(), 4 * params) << pool;
      EXPECT_EQ(eval::model_bytes(d.subnet->layer_infos()), d.graph.model_bytes()) << pool;
      EXPECT_EQ(eval::model_bytes(net->layer_infos(spec)), d.graph.model_bytes()) << pool;
    }
  }
}

TEST(ViTDeploy, GeluRunsOnItsLinearsQuantizedGrid) {
  auto net = trained_tiny_net("vit");
  const auto d = deploy_spec(net, supernet::largest_spec(net->space(), policy(8, 8)));
  int gelus = 0;
  for (const auto& n : d.graph.nodes)
    if (n.kind == deploy::OpKind::kAct && n.act == supernet::Act::kGelu) {
      ++gelus;
      const auto& out = d.graph.values[size_t(n.output)];
      EXPECT_TRUE(out.quantized && out.qsource == deploy::QSource::kInput) << n.name;
    }
  EXPECT_EQ(gelus, 2);  // depth 2
  // fc1 -> GELU -> fc2 without a precision change: the quantize nodes are the
  // stem's, each block's two LayerNorm outputs and attention output, the class token's.
  EXPECT_EQ(count(d.graph, deploy::OpKind::kQuantize), 1 + 2 * 3 + 1);
}

TEST(ViTDeploy, SmoothQuantFoldsIntoLayerNormAndLeavesTheFunctionUnchanged) {
  auto net = randomised_vit("cls");
  auto d = deploy_spec(net, supernet::largest_spec(net->space()));
  const auto x = batch(data().test, 32);
  const auto before = deploy::simulate(d.graph, x);
  at::manual_seed(5);
  // qkv and fc1 read a LayerNorm: folded into its affine; proj reads
  // attention: folded into V's rows of qkv; the classifier reads the class
  // token of the final LayerNorm: folded into it. fc2 reads GELU, which
  // nothing folds through: a scale node.
  for (const std::string layer : {"s0.b0.qkv", "s0.b1.fc1", "s0.b1.proj", "s0.b0.proj", "classifier", "s0.b0.fc2"}) {
    auto& n = node(d.graph, layer);
    const auto s = at::rand({n.weight.size(1)}, at::kDouble) * 1.5 + 0.5;
    EXPECT_EQ(deploy::input_division_folds(d.graph, layer), layer != "s0.b0.fc2") << layer;
    const bool folded = deploy::divide_layer_input(d.graph, layer, s);
    EXPECT_EQ(folded, layer != "s0.b0.fc2") << layer;
    auto& m = node(d.graph, layer);
    m.weight = (m.weight.to(at::kDouble) * s.unsqueeze(0)).to(at::kFloat);  // the weights' side of the migration
  }
  EXPECT_EQ(count(d.graph, deploy::OpKind::kScale), 1);
  deploy::calibrate(d.graph, batch(data().train, 64), 64);
  const auto after = deploy::simulate(d.graph, x);
  EXPECT_TRUE(at::allclose(after, before, 1e-4, 1e-4)) << "max diff " << (after - before).abs().max().item<float>();
}

TEST(ViTDeploy, SmoothQuantFoldsIntoEveryLayerNormAndScalesTheRest) {
  auto net = trained_tiny_net("vit");
  const auto spec = supernet::largest_spec(net->space(), smoothquant());
  auto d = deploy_spec(net, spec);
  deploy::CompressSettings settings;
  settings.hessian_images = 128;
  settings.batch_size = 128;
  deploy::compress_weights(d.graph, *d.subnet, batch(data().train, 256), settings);
  // qkv, fc1 and the classifier read a LayerNorm, proj attention's V: folded,
  // so they stay int8 end to end. fc2 (after GELU) and the stem (the image)
  // have no foldable producer: scale nodes.
  std::set<std::string> scaled;
  for (const auto& n : d.graph.nodes)
    if (n.kind == deploy::OpKind::kScale) scaled.insert(n.name);
  EXPECT_EQ(scaled, (std::set<std::string>{"stem.smooth", "s0.b0.fc2.smooth", "s0.b1.fc2.smooth"}));
}
