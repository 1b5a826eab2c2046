// The deployed graph: the fp32 graph computes what the subnet computes;
// precision changes only where neighbours differ (the int8 runtime against
// the simulation is in the conformance suite, tests/families); sub-8-bit
// weights are exact on int8 kernels; model_bytes is the packed size.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>

#include "src/core/dataset.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/simulate.hpp"
#include "src/eval/evaluator.hpp"
#include "tests/deploy/deploy_fixture.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

int count(const deploy::Graph& g, deploy::OpKind kind) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.kind == kind;
  return n;
}

}  // namespace

TEST(Deploy, Fp32GraphComputesWhatTheSubnetComputes) {
  auto net = tiny_net();
  auto d = deploy_spec(net, supernet::largest_spec(net->space()));
  EXPECT_EQ(count(d.graph, deploy::OpKind::kQuantize), 0);
  c10::InferenceMode guard;
  const auto x = batch(data().test, 64);
  const auto y = deploy::simulate(d.graph, x);
  EXPECT_TRUE(at::allclose(y, d.subnet->forward(x), 1e-4, 1e-4)) << (y - d.subnet->forward(x)).abs().max().item<double>();
}

TEST(Deploy, AllInt8QuantizesOnceAndDequantizesOnce) {
  auto net = tiny_net();
  auto d = deploy_spec(net, supernet::largest_spec(net->space(), policy(8, 8)));
  // Residual adds, SE pooling and gating, h-swish all stay quantized.
  EXPECT_EQ(count(d.graph, deploy::OpKind::kQuantize), 1);
  EXPECT_EQ(count(d.graph, deploy::OpKind::kDequantize), 1);
  EXPECT_GT(count(d.graph, deploy::OpKind::kAdd), 0);
  EXPECT_GT(count(d.graph, deploy::OpKind::kMul), 0);
  for (const auto& n : d.graph.nodes) {
    if (n.has_weight()) {
      EXPECT_TRUE(n.int8) << n.name;
    }
  }
}

// resnet's ReLU after the residual add runs quantized, on its input's grid,
// when both inputs of the add are quantized, and in fp32 when one is not.
TEST(Deploy, ReluAfterTheAddRunsQuantizedWhenBothInputsAre) {
  auto net = tiny_net("resnet");
  const auto int8 = deploy_spec(net, supernet::largest_spec(net->space(), policy(8, 8)));
  const auto& values = int8.graph.values;
  int adds = 0, relus = 0;
  for (const auto& n : int8.graph.nodes) {
    if (n.kind == deploy::OpKind::kAdd) {
      ++adds;
      EXPECT_TRUE(values[size_t(n.output)].quantized) << n.name;
    }
    if (n.kind == deploy::OpKind::kAct) {
      ++relus;
      EXPECT_EQ(n.act, supernet::Act::kRelu) << n.name;
      EXPECT_TRUE(values[size_t(n.output)].quantized) << n.name;
      EXPECT_EQ(values[size_t(n.output)].qsource, deploy::QSource::kInput) << n.name;
    }
  }
  EXPECT_EQ(adds, 4);  // one per block of the largest tiny subnet
  EXPECT_EQ(relus, 4);
  EXPECT_EQ(count(int8.graph, deploy::OpKind::kQuantize), 1);
  EXPECT_EQ(count(int8.graph, deploy::OpKind::kDequantize), 1);

  auto spec = supernet::largest_spec(net->space(), policy(8, 8));
  spec.policy.at("s0.b1.conv3") = policy(32, 32);
  const auto mixed = deploy_spec(net, spec);
  for (const auto& n : mixed.graph.nodes)
    if (n.name == "s0.b1.add" || n.name == "s0.b1.relu") {
      EXPECT_FALSE(mixed.graph.values[size_t(n.output)].quantized) << n.name;
    } else if (n.name == "s1.b0.add") {
      EXPECT_TRUE(mixed.graph.values[size_t(n.output)].quantized) << n.name;
    }
}

TEST(Deploy, SubEightBitWeightsAreExactCodesOnInt8) {
  auto net = tiny_net();
  auto d = deploy_spec(net, supernet::largest_spec(net->space(), policy(4, 8)));
  for (const auto& n : d.graph.nodes) {
    if (!n.has_weight()) continue;
    EXPECT_TRUE(n.int8 && n.weight_bits == 4) << n.name;
    EXPECT_LE(n.weight_codes.abs().max().item<int>(), 7) << n.name;
    std::vector<int64_t> shape(size_t(n.weight.dim()), 1);
    shape[0] = n.weight.size(0);
    EXPECT_TRUE(n.weight.equal(n.weight_codes.to(at::kFloat) * n.weight_scales.to(at::kFloat).reshape(shape)));
  }
}

TEST(Deploy, ModelBytesIsThePackedSize) {
  auto net = tiny_net();
  const auto fp32 = deploy_spec(net, supernet::largest_spec(net->space()));
  const auto w4 = deploy_spec(net, supernet::largest_spec(net->space(), policy(4, 32)));
  int64_t weights = 0, channels = 0, biases = 0;
  for (const auto& n : fp32.graph.nodes)
    if (n.has_weight()) {
      weights += n.weight.numel();
      channels += n.weight.size(0);
      biases += n.bias.numel();
    }
  EXPECT_EQ(fp32.graph.model_bytes(), 4 * (weights + biases));
  // 4-bit weights: ceil(n/2) per layer, plus one fp32 scale per output channel.
  int64_t packed = 0;
  for (const auto& n : w4.graph.nodes)
    if (n.has_weight()) packed += (n.weight.numel() * 4 + 7) / 8;
  EXPECT_EQ(w4.graph.model_bytes(), packed + 4 * channels + 4 * biases);
}

TEST(Deploy, RefusesUnfoldedOrUncalibrated) {
  auto net = tiny_net();
  auto subnet = net->extract(supernet::largest_spec(net->space(), policy(8, 8)));
  qnas::testing::expect_error([&] { deploy::build_graph(*subnet); }, {"BN is not folded"});
  subnet->fold_bn();
  auto g = deploy::build_graph(*subnet);
  qnas::testing::expect_error([&] { deploy::Int8Model m(g); }, {"uncalibrated"});
  qnas::testing::expect_error([&] { deploy::simulate(g, batch(data().test, 2)); }, {"uncalibrated"});
}

// eval.bn_recal_quantized: BN statistics are those of the network with its
// weights on their grids; fp32 layers and layers whose method fits the fp32
// layer are unaffected, and the fp32 weights come back afterwards (folding
// and the graph quantize them as always).
TEST(Deploy, BnRecalibrationOnQuantizedWeights) {
  const auto net = tiny_net();
  const auto images = batch(data().train, 256);
  const auto running_means = [](const supernet::Subnet& s) {
    std::vector<at::Tensor> out;
    for (const auto& u : s->units())
      if (!u->bn.is_empty()) out.push_back(u->bn->running_mean.clone());
    return out;
  };
  const auto fp32 = supernet::largest_spec(net->space());
  auto plain = net->extract(fp32), quantized = net->extract(fp32);
  eval::recalibrate_bn(*plain, images, 128);
  eval::recalibrate_bn_quantized(*quantized, images, 128);
  const auto a = running_means(plain), b = running_means(quantized);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i]));  // nothing quantized: the same

  const auto w4 = supernet::largest_spec(net->space(), policy(4, 32));
  auto subnet = net->extract(w4);
  std::vector<at::Tensor> before;
  for (const auto& u : subnet->units()) before.push_back(u->weight.clone());
  eval::recalibrate_bn_quantized(*subnet, images, 128);
  const auto c = running_means(subnet);
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, (a[i] - c[i]).abs().max().item<double>());
  EXPECT_GT(diff, 1e-4);  // 4-bit weights move the statistics
  const auto units = subnet->units();
  for (size_t i = 0; i < units.size(); ++i) EXPECT_TRUE(units[i]->weight.equal(before[i])) << units[i]->desc().name;
  // Methods fitted to the fp32 layer (GPTQ here) deploy no RTN grid: their
  // statistics stay fp32, else BN would undo the mean shift the fit removed.
  // The CP factorizations leave depthwise layers on their RTN grid.
  const bool has_depthwise = std::any_of(units.begin(), units.end(), [](const auto& u) { return u->desc().groups() > 1; });
  for (const std::string method : {"gptq", "admm_cp"}) {
    auto p = policy(4, 32);
    p.method = method;
    auto fitted = net->extract(supernet::largest_spec(net->space(), p));
    eval::recalibrate_bn_quantized(*fitted, images, 128);
    const auto d = running_means(fitted);
    bool all_equal = true;
    for (size_t i = 0; i < a.size(); ++i) all_equal = all_equal && a[i].equal(d[i]);
    EXPECT_EQ(all_equal, method == "gptq" || !has_depthwise) << method;
  }
  subnet->fold_bn();
  EXPECT_THROW(eval::recalibrate_bn_quantized(*subnet, images, 128), qnas::Error);
}
