// Each int8 kernel of the deployed runtime against its fp32 reference, in
// graphs of one or two ops: the int8 output is within one output step of
// the fp32 op applied to the same dequantized inputs (the simulation), and
// within the quantization error bound of the op on unquantized inputs.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "src/deploy/byte_table.hpp"
#include "src/deploy/convert.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/simulate.hpp"
#include "src/quant/fake_quant.hpp"
#include "tests/deploy/deploy_fixture.hpp"

using namespace qnas;
using deploy::OpKind;
using supernet::Act;

namespace {

// Builds input -> quantize -> ops... -> dequantize by hand.
class OneOpGraph {
 public:
  OneOpGraph() {
    g.input = value(false);
    q_input = node(OpKind::kQuantize, {g.input}, true);
  }
  int value(bool quantized, deploy::QSource src = deploy::QSource::kObserved) {
    deploy::Value v;
    v.name = "v" + std::to_string(g.values.size());
    v.quantized = quantized;
    v.qsource = src;
    if (src == deploy::QSource::kFixed) v.q = {1.0 / 256.0, 0};
    g.values.push_back(v);
    return int(g.values.size()) - 1;
  }
  int node(OpKind kind, std::vector<int> inputs, bool quantized, deploy::QSource src = deploy::QSource::kObserved,
           Act act = Act::kNone) {
    deploy::Node n;
    n.kind = kind;
    n.name = std::string(deploy::op_name(kind)) + std::to_string(g.nodes.size());
    n.inputs = std::move(inputs);
    n.act = act;
    n.output = value(quantized, src);
    g.nodes.push_back(n);
    return n.output;
  }
  int layer(OpKind kind, int in, at::Tensor w, int64_t groups = 1, int64_t stride = 1, Act act = Act::kNone) {
    const int out = node(kind, {in}, true, deploy::QSource::kObserved, act);
    auto& n = g.nodes.back();
    n.int8 = true;
    n.weight_bits = 8;
    n.groups = groups;
    n.stride = stride;
    if (kind == OpKind::kConv) n.padding = w.size(-1) / 2;
    n.bias = at::randn({w.size(0)}) * 0.1;
    n.weight_scales = quant::symmetric_weight_scales(w, 8);
    n.weight_codes = quant::quantize_weight_codes(w, n.weight_scales, 8);
    n.weight = quant::dequantize_weight_codes(n.weight_codes, n.weight_scales);
    return out;
  }
  // Finishes the graph at `v`, calibrates on x; returns the output step.
  double finish(int v, const at::Tensor& x) {
    g.output = node(OpKind::kDequantize, {v}, false);
    deploy::calibrate(g, x, x.size(0));
    return g.values[size_t(v)].q.scale;
  }
  deploy::Graph g;
  int q_input = -1;
};

at::Tensor images(std::vector<int64_t> shape) {
  at::manual_seed(3);
  return at::randn(shape).contiguous(at::MemoryFormat::ChannelsLast);
}

// int8 runtime vs simulation: within one output step (rounding of the
// requantization may differ at ties), and the output is not trivial.
void expect_within_one_step(const deploy::Graph& g, const at::Tensor& x, double step) {
  deploy::Int8Model model(g);
  c10::InferenceMode guard;
  const auto int8 = model.forward(x), sim = deploy::simulate(g, x);
  EXPECT_LE((int8 - sim).abs().max().item<double>(), step * 1.001);
  EXPECT_GT(sim.std().item<double>(), 10 * step);
}

}  // namespace

// Saturation of the int16 pair sums is flagged exactly where it can happen:
// on a CPU without VNNI, for weight codes beyond +-63, never for 4-bit codes.
TEST(Int8Ops, SaturationRiskIsFlaggedForWideCodesOnCpusWithoutVnni) {
  for (const int bits : {4, 8}) {
    OneOpGraph b;
    const auto w = at::randn({16, 16, 3, 3});
    const int y = b.layer(OpKind::kConv, b.q_input, w);
    auto& n = b.g.nodes.back();
    n.weight_bits = bits;
    n.weight_scales = quant::symmetric_weight_scales(w, bits);
    n.weight_codes = quant::quantize_weight_codes(w, n.weight_scales, bits);
    b.finish(y, images({2, 16, 9, 9}));
    EXPECT_EQ(deploy::int8_may_saturate(b.g), bits == 8 && !deploy::int8_accumulation_exact()) << bits;
  }
}

TEST(Int8Ops, ConvWithinQuantizationError) {
  for (const int64_t groups : {int64_t(1), int64_t(16)}) {
    OneOpGraph b;
    const auto w = at::randn({16, 16 / groups, 3, 3}) * 0.3;
    const int y = b.layer(OpKind::kConv, b.q_input, w, groups, /*stride=*/2, Act::kRelu);
    const auto x = images({8, 16, 9, 9});
    const double step = b.finish(y, x);
    if (!qnas::testing::int8_checkable(b.g, "int8 conv")) continue;
    expect_within_one_step(b.g, x, step);
    // Against the fp32 conv of the unquantized input: the input's rounding
    // (half a step, times sum |w| per output channel) plus the output's.
    const auto& n = b.g.nodes[1];
    const double in_step = b.g.values[size_t(b.q_input)].q.scale;
    const double bound = step + 0.5 * in_step * n.weight.abs().sum({1, 2, 3}).max().item<double>();
    c10::InferenceMode guard;
    const auto ref = deploy::run_fp32_node(n, {x});
    EXPECT_LE((deploy::Int8Model(b.g).forward(x) - ref).abs().max().item<double>(), bound);
  }
}

TEST(Int8Ops, LinearWithinOneStep) {
  OneOpGraph b;
  const int pooled = b.node(OpKind::kMean, {b.q_input}, true, deploy::QSource::kInput);
  const int y = b.layer(OpKind::kLinear, pooled, at::randn({12, 32}) * 0.3);
  const auto x = images({16, 32, 5, 5}) + 0.5;
  expect_within_one_step(b.g, x, b.finish(y, x));
}

TEST(Int8Ops, ResidualAddWithinOneStep) {
  OneOpGraph b;
  const int h = b.node(OpKind::kAct, {b.q_input}, true, deploy::QSource::kObserved, Act::kHswish);
  const int y = b.node(OpKind::kAdd, {b.q_input, h}, true);
  const auto x = images({4, 24, 7, 7}) * 3;
  expect_within_one_step(b.g, x, b.finish(y, x));
}

TEST(Int8Ops, SqueezeExcitationGatingWithinOneStep) {
  OneOpGraph b;
  const int pooled = b.node(OpKind::kMean, {b.q_input}, true, deploy::QSource::kInput);
  const int gate = b.node(OpKind::kAct, {pooled}, true, deploy::QSource::kFixed, Act::kHsigmoid);
  const int y = b.node(OpKind::kMul, {b.q_input, gate}, true);
  const auto x = images({4, 40, 6, 6}) * 2;
  expect_within_one_step(b.g, x, b.finish(y, x));
}

TEST(Int8Ops, ByteTableIsTheQuantizedFunctionExactly) {
  const deploy::QParams in{0.05, 100}, out{0.04, 20};
  const deploy::ByteTable table(Act::kHswish, in, out);
  for (int c = 0; c < 256; ++c) {
    const float x = float(c - in.zero_point) * float(in.scale);
    const float y = std::min(std::max(x + 3.f, 0.f), 6.f) * x / 6.f;
    const float q = std::min(std::max(std::nearbyint(y * (1.0f / float(out.scale))) + float(out.zero_point), 0.f), 255.f);
    EXPECT_EQ(int(table[c]), int(q)) << "code " << c;
  }
  // The vectorised lookup (64 bytes per step) and its scalar tail agree with the table.
  const auto codes = at::randint(0, 256, {3, 37, 5, 7}, at::kByte);
  const auto qx = at::_make_per_tensor_quantized_tensor(codes, in.scale, in.zero_point)
                      .contiguous(at::MemoryFormat::ChannelsLast);
  const auto qy = table.apply(qx);
  EXPECT_TRUE(qy.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_EQ(qy.q_scale(), out.scale);
  const auto got = qy.int_repr().contiguous(), want = qx.int_repr().contiguous();
  const auto* g = got.data_ptr<uint8_t>();
  const auto* w = want.data_ptr<uint8_t>();
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(int(g[i]), int(table[w[i]])) << "element " << i;
}

TEST(Int8Ops, QuantizeAndDequantizeAreLibTorchsExactly) {
  const deploy::QParams q{0.0371, 117};
  at::manual_seed(3);
  // Values far outside the grid, exact ties (k + 0.5 steps) and ordinary
  // ones; shapes whose sizes are no multiple of the 32-wide steps.
  auto x = at::randn({5, 13, 7, 3}) * 4;
  x.view(-1).narrow(0, 0, 40).copy_((at::arange(40, at::kFloat) - 20.f + 0.5f) * float(q.scale));
  x.view(-1)[41] = 1e9f;
  x.view(-1)[42] = -1e9f;
  for (const auto& in : {x, x.contiguous(at::MemoryFormat::ChannelsLast), x.reshape({5, 91, 3}), x.reshape({-1})}) {
    const auto ours = deploy::quantize_act(in, q);
    const auto aten = at::quantize_per_tensor(in, q.scale, q.zero_point, at::kQUInt8);
    EXPECT_EQ(ours.suggest_memory_format(), in.suggest_memory_format());
    EXPECT_EQ(ours.q_scale(), q.scale);
    EXPECT_EQ(ours.q_zero_point(), q.zero_point);
    EXPECT_TRUE(ours.int_repr().equal(aten.int_repr()));
    // And the simulation's codes: fake quantization is dequantize(quantize(x)).
    const auto back = deploy::dequantize_act(ours);
    EXPECT_EQ(back.suggest_memory_format(), in.suggest_memory_format());
    EXPECT_TRUE(back.equal(quant::fake_quant_act(in, {8, q.scale, q.zero_point})));
    EXPECT_TRUE(at::allclose(back, aten.dequantize(), 0, 1e-6));
  }
}
