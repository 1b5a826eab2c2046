// The conformance suite, run for every family of supernet/families.cpp: the
// extracted subnet computes the supernet's forward; encode/decode round-trip
// and canonicalise; the shape proxies are the extracted subnet's costs; the
// int8 runtime agrees with the simulation; every compression method deploys;
// trained subnets learn; training resumes exactly.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "search/space.hpp"
#include "search/tactics.hpp"
#include "src/deploy/compress.hpp"
#include "src/eval/metrics.hpp"
#include "tests/deploy/deploy_fixture.hpp"
#include "tests/families/families.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

class Conformance : public FamilyTest {};

// Largest, smallest and random architectures (fp32 policies).
std::vector<supernet::SubnetSpec> architectures(const supernet::SpaceDesc& space, int random, uint64_t seed) {
  core::Rng rng(seed);
  std::vector<supernet::SubnetSpec> specs{supernet::largest_spec(space), supernet::smallest_spec(space)};
  for (int i = 0; i < random; ++i) specs.push_back(supernet::random_spec(space, rng, false));
  return specs;
}

double top1(const at::Tensor& logits, const at::Tensor& labels) {
  return 100.0 * logits.argmax(1).eq(labels).to(at::kDouble).mean().item<double>();
}

// The shapes' model_bytes (eval::model_bytes, what the search's proxies
// compute) and the deployed graph's count each layer's weights and bias with
// one function (quant::stored_layer_bytes) and differ only in what the graph's
// precision plan decides: the shapes count one set of activation parameters
// per layer with a calibrated input, the graph one per quantized value with
// its own (an add's output has one, a value two layers read has one), plus
// the factors of SmoothQuant's scale nodes where the division cannot fold.
void expect_model_bytes_agree(const supernet::Supernet& net, const supernet::SubnetSpec& spec, const deploy::Graph& g,
                              const std::string& what) {
  const auto layers = net->layer_infos(spec);
  int64_t calibrated_inputs = 0, scale_floats = 0;
  for (const auto& l : layers)
    for (const auto& p : eval::deployed_parts(l)) calibrated_inputs += p.policy.calibrates_input();
  for (const auto& n : g.nodes)
    if (n.kind == deploy::OpKind::kScale) scale_floats += n.channel_scale.numel();
  EXPECT_EQ(g.model_bytes() - quant::kActQParamBytes * g.own_act_params() - quant::kFloatBytes * scale_floats,
            eval::model_bytes(layers) - quant::kActQParamBytes * calibrated_inputs)
      << what;
}

}  // namespace

TEST_P(Conformance, ExtractedSubnetComputesTheSupernetsForward) {
  auto net = randomised_net(tiny_config("", kind()));
  at::manual_seed(42);
  const auto x = at::randn({6, 1, 28, 28});
  at::NoGradGuard no_grad;
  for (const auto& spec : architectures(net->space(), 8, 5)) {
    const auto expected = net->forward(x, spec);
    const auto got = net->extract(spec)->forward(x);
    EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5))
        << "max diff " << (got - expected).abs().max().item<double>() << " for " << supernet::to_json(spec).dump();
  }
}

TEST_P(Conformance, ExtractedSubnetHoldsCopies) {
  auto net = tiny_net(kind());
  auto subnet = net->extract(supernet::largest_spec(net->space()));
  at::manual_seed(1);
  const auto x = at::randn({2, 1, 28, 28});
  at::NoGradGuard no_grad;
  const auto before = subnet->forward(x);
  for (auto& p : net->parameters()) p.mul_(0.0);
  EXPECT_TRUE(subnet->forward(x).equal(before));
}

TEST_P(Conformance, EncodeDecodeRoundTripsAndCanonicalises) {
  const search::Space space(tiny_net(kind())->space());
  core::Rng rng(5);
  for (int t = 0; t < 200; ++t) {
    const auto spec = supernet::random_spec(space.desc(), rng);
    const auto g = space.encode(spec);
    EXPECT_EQ(space.decode(g), spec);
    EXPECT_EQ(space.canonical(g), g);
    const auto r = space.random(rng);
    EXPECT_EQ(space.encode(space.decode(r)), r);
  }
  // The smallest architecture cuts blocks: their genes do not matter.
  const auto g = space.encode(supernet::smallest_spec(space.desc()));
  auto other = g;
  int inactive = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (!space.is_active(g, i)) other[i] = space.cardinalities()[i] - 1, ++inactive;
  EXPECT_GT(inactive, 0);
  EXPECT_EQ(space.decode(other), space.decode(g));
  EXPECT_EQ(space.canonical(other), g);
}

TEST_P(Conformance, ShapeProxiesAreTheExtractedSubnetsCosts) {
  auto net = tiny_net(kind());
  const search::Space space(net->space());
  const auto proxies = search::shape_proxies(space, *net);
  core::Rng rng(8);
  for (int t = 0; t < 20; ++t) {
    const auto g = space.random(rng);
    const auto spec = space.decode(g);
    const auto shapes = net->layer_infos(spec), extracted = net->extract(spec)->layer_infos();
    ASSERT_EQ(shapes.size(), extracted.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto &a = shapes[i], &b = extracted[i];
      EXPECT_EQ(std::tie(a.name, a.kind, a.in_channels, a.out_channels, a.kernel, a.stride, a.groups, a.out_h, a.out_w,
                         a.weight_numel, a.bias_numel),
                std::tie(b.name, b.kind, b.in_channels, b.out_channels, b.kernel, b.stride, b.groups, b.out_h, b.out_w,
                         b.weight_numel, b.bias_numel))
          << b.name;
      EXPECT_EQ(a.policy, b.policy) << b.name;
    }
    EXPECT_EQ(proxies(g), search::MetricValues(eval::cost_metrics(extracted))) << search::genome_key(g);
  }
}

TEST_P(Conformance, TrainedSubnetsLearn) {
  auto net = trained_tiny_net(kind());
  const auto x = batch(data().test, 500);
  const auto labels = data().test.labels.narrow(0, 0, 500);
  // The family's tiny_epochs on 2,500 images: well above chance (10%), not converged.
  const std::pair<supernet::SubnetSpec, double> cases[] = {{supernet::largest_spec(net->space()), 50.0},
                                                           {supernet::smallest_spec(net->space()), 40.0}};
  for (const auto& [spec, bound] : cases) {
    auto d = deploy_spec(net, spec);
    c10::InferenceMode guard;
    EXPECT_GT(top1(deploy::simulate(d.graph, x), labels), bound) << supernet::to_json(spec).dump();
  }
}

TEST_P(Conformance, Int8RuntimeAgreesWithTheSimulation) {
  auto net = trained_tiny_net(kind());
  core::Rng rng(7);
  std::vector<supernet::SubnetSpec> specs{supernet::largest_spec(net->space(), policy(8, 8)),
                                          supernet::smallest_spec(net->space(), policy(4, 8))};
  // Mixed: every layer's policy drawn from {8/8, 4/8, 32/32, 32/8, 4/32}.
  const std::vector<quant::LayerPolicy> mix{policy(8, 8), policy(4, 8), policy(32, 32), policy(32, 8), policy(4, 32)};
  for (int i = 0; i < 3; ++i) {
    auto spec = supernet::random_spec(net->space(), rng, false);
    for (auto& [layer, p] : spec.policy) p = mix[size_t(core::uniform_index(rng, int64_t(mix.size())))];
    specs.push_back(spec);
  }
  // The classifier quantizing its input per call (dynamic), the rest W8A8.
  specs.push_back(specs[0]);
  for (const auto& l : net->layer_infos(specs.back()))
    if (l.kind == "linear") specs.back().policy[l.name].params["dynamic"] = 1;
  const auto x = batch(data().test, 256);
  for (const auto& spec : specs) {
    auto d = deploy_spec(net, spec);
    expect_model_bytes_agree(net, spec, d.graph, supernet::to_json(spec).dump());
    if (!int8_checkable(d.graph, kind() + " int8 vs simulation")) continue;
    c10::InferenceMode guard;
    const auto sim = deploy::simulate(d.graph, x), int8 = deploy::Int8Model(d.graph).forward(x);
    EXPECT_GE(sim.argmax(1).eq(int8.argmax(1)).to(at::kDouble).mean().item<double>(), 0.99)
        << supernet::to_json(spec).dump();
    EXPECT_LT(((sim - int8).abs().max() / sim.abs().max()).item<double>(), 0.05) << supernet::to_json(spec).dump();
  }
}

// Each method on every layer of the largest subnet: it compresses, runs on
// the int8 kernels its policy gives, and the int8 runtime computes what the
// simulation does; the 8- and 4-bit methods keep most of the fp32 top-1.
TEST_P(Conformance, EveryCompressionMethodDeploys) {
  auto net = trained_tiny_net(kind());
  const auto images = batch(data().train, 256);
  const auto x = batch(data().test, 256);
  const auto labels = data().test.labels.narrow(0, 0, 256);
  double fp32_top1 = 0;
  {
    auto d = deploy_spec(net, supernet::largest_spec(net->space()));
    c10::InferenceMode guard;
    fp32_top1 = top1(deploy::simulate(d.graph, x), labels);
  }
  struct Case {
    quant::LayerPolicy policy;
    bool int8, keeps_top1;
  };
  const std::vector<Case> cases{
      {method_policy("rtn", 4, 8), true, true},
      {method_policy("gptq", 4, 8, {{"act_order", 1}}), true, true},
      {method_policy("smoothquant", 8, 8, {{"alpha", 0.5}}), true, true},
      {method_policy("decoupleq", 2, 32, {{"iterations", 2}, {"tune_steps", 10}}), false, false},
      {method_policy("admm_cp", 4, 8, {{"rank_rate", 1.5}}), true, false},
      {method_policy("cp_rtn", 8, 8), true, false},
  };
  deploy::CompressSettings settings;
  settings.hessian_images = 128;
  settings.batch_size = 128;
  for (const auto& c : cases) {
    const std::string what = kind() + " " + c.policy.method;
    auto d = deploy_spec(net, supernet::largest_spec(net->space(), c.policy));
    if (deploy::needs_compression(d.graph)) deploy::compress_weights(d.graph, *d.subnet, images, settings);
    expect_model_bytes_agree(net, supernet::largest_spec(net->space(), c.policy), d.graph, what);
    int weighted = 0, int8 = 0;
    for (const auto& n : d.graph.nodes) weighted += n.has_weight(), int8 += n.has_weight() && n.int8;
    EXPECT_EQ(int8 > 0, c.int8) << what << ": " << int8 << " of " << weighted << " weight nodes on int8 kernels";
    c10::InferenceMode guard;
    const auto sim = deploy::simulate(d.graph, x);
    ASSERT_TRUE(sim.isfinite().all().item<bool>()) << what;
    const double t = top1(sim, labels);
    std::fprintf(stderr, "[ %s ] top-1 %.1f (fp32 %.1f) on 256 test images\n", what.c_str(), t, fp32_top1);
    if (c.keeps_top1) {
      EXPECT_GT(t, fp32_top1 - 10.0) << what;
    }
    if (!int8_checkable(d.graph, what)) continue;
    const auto out = deploy::Int8Model(d.graph).forward(x);
    EXPECT_GE(sim.argmax(1).eq(out.argmax(1)).to(at::kDouble).mean().item<double>(), 0.98) << what;
  }
}

// Quantization-aware training (the fake-quantized forward included) stopped
// after one epoch and resumed ends with the weights of an uninterrupted run.
TEST_P(Conformance, TrainingResumesExactly) {
  TempDir full_dir("full_" + kind()), cut_dir("cut_" + kind());
  auto cfg = tiny_config(full_dir.str(), kind());
  cfg.train.quant_aware = true;
  cfg.train.epochs = 2;
  cfg.data.train_subset = 600;
  cfg.data.val_size = 100;
  cfg.train.eval_every = 0;
  const auto full = train(cfg);
  auto cut = cfg;
  cut.output.dir = cut_dir.str();
  train(cut, /*stop_after=*/1);
  expect_same_weights(full, train(cut, -1, /*resume=*/true));
}

TEST(Families, EveryFamilyHasAConfigSectionAndATinyInstance) {
  EXPECT_EQ(family_kinds(), core::supernet_kinds());
  for (const auto& f : supernet::families()) {
    core::Config c;
    f.tiny(c);
    EXPECT_EQ(c.supernet.kind, f.kind);
    // The tiny instance's config survives the resolved-config round trip.
    EXPECT_EQ(core::to_yaml(core::parse_config(core::to_yaml(c), "resolved.yaml")), core::to_yaml(c)) << f.kind;
  }
  expect_error([] { supernet::family("vgg"); }, {"supernet.kind: 'vgg'; expected one of the families mbv3, resnet"});
}

QNAS_FOR_EVERY_FAMILY(Conformance);
