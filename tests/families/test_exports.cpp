// Exports of every family's subnets (part of the conformance suite): ONNX
// run by ONNX Runtime (the consumer test), TorchScript reloaded by
// torch::jit::load and by Python's torch.jit.load, safetensors reloaded by
// load_deployed(); each against qnas's deployed model.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/script.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "src/core/fs.hpp"
#include "src/deploy/compress.hpp"
#include "src/deploy/export.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "tests/deploy/deploy_fixture.hpp"
#include "tests/families/families.hpp"

using namespace qnas;
using namespace qnas::testing;

namespace {

class Exports : public FamilyTest {};

constexpr int64_t kImages = 256;

// Largest all-8/8, a mixed spec (8/8, 4/8, 32/32, 32/8, 4/32 per layer), and
// one with every method (smoothquant, gptq, decoupleq, asymmetric rtn), one
// CP-factorized (admm_cp, cp_rtn; W4A8, W8A8, W3A32), one with dynamic linears.
std::vector<std::pair<std::string, supernet::SubnetSpec>> specs(const supernet::Supernet& net) {
  const auto cycle = [&](const std::vector<quant::LayerPolicy>& mix) {
    auto spec = supernet::largest_spec(net->space());
    size_t i = 0;
    for (auto& [layer, p] : spec.policy) p = mix[i++ % mix.size()];
    return spec;
  };
  const auto mixed = cycle({policy(8, 8), policy(4, 8), policy(32, 32), policy(32, 8), policy(4, 32)});
  auto methods = cycle({method_policy("smoothquant", 8, 8, {{"alpha", 0.5}}), method_policy("gptq", 4, 8, {}),
                              method_policy("decoupleq", 2, 32, {{"iterations", 2}, {"tune_steps", 10}}),
                              method_policy("rtn", 3, 8, {{"sym", 0}}), method_policy("gptq", 4, 32, {{"sym", 0}})});
  // The first layer reads the image: SmoothQuant's division has no producer
  // to fold into there, so every family's export holds a scale node.
  for (const auto& l : net->layer_infos(methods))
    if (l.compressible) {
      methods.policy.at(l.name) = method_policy("smoothquant", 8, 8, {{"alpha", 0.5}});
      break;
    }
  const auto factorized = cycle({method_policy("admm_cp", 4, 8, {{"rank_rate", 1.5}}),
                                 method_policy("cp_rtn", 8, 8, {}), method_policy("admm_cp", 3, 32, {})});
  auto dynamic = supernet::largest_spec(net->space(), policy(8, 8));  // static int8 convs, dynamic linears
  for (const auto& l : net->layer_infos(dynamic))
    if (l.compressible && l.kind == "linear") dynamic.policy.at(l.name) = method_policy("rtn", 8, 8, {{"dynamic", 1}});
  return {{"w8a8", supernet::largest_spec(net->space(), policy(8, 8))}, {"mixed", mixed}, {"methods", methods},
          {"factorized", factorized}, {"dynamic", dynamic}};
}



// Deploys each of specs() on the family's trained tiny net and exports it in
// `format` under tmp/<label>; f(label, deployed, export folder).
template <class F>
void for_each_export(const std::string& kind, const std::string& format, const TempDir& tmp, F f) {
  auto net = trained_tiny_net(kind);
  for (const auto& [label, spec] : specs(net)) {
    auto d = deploy_spec(net, spec);
    if (deploy::needs_compression(d.graph)) {
      deploy::CompressSettings settings;
      settings.hessian_images = 128;
      settings.batch_size = 128;
      deploy::compress_weights(d.graph, *d.subnet, batch(data().train, 256), settings);
    }
    f(label, spec, d, export_to(d.graph, spec, format, tmp.file(label)));
  }
}



int shell(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

}  // namespace

TEST_P(Exports, OnnxRunsInOnnxRuntimeLikeTheDeployedModel) {
  const std::string runner = std::string(QNAS_SOURCE_DIR) + "/tests/node/run_onnx.js";
  ASSERT_TRUE(core::file_exists(std::string(QNAS_SOURCE_DIR) + "/tests/node/node_modules/onnxruntime-node"))
      << "onnxruntime-node is missing: run scripts/install-deps.sh (installs it into tests/node)";
  TempDir tmp("onnx");
  const auto raw = raw_pixels(kImages);
  write_floats(tmp.file("pixels.f32"), raw);
  for_each_export(kind(), "onnx", tmp, [&](const std::string& label, const supernet::SubnetSpec&, const Deployed& d,
                                   const std::string& dir) {
    // ONNX Runtime's u8 x s8 kernels saturate on such CPUs as oneDNN's do
    // (its quantization guide says so), each in its own way.
    if (!int8_checkable(d.graph, kind() + " onnx " + label)) return;
    const std::string cmd = "node " + runner + " " + dir + "/model.onnx " + tmp.file("pixels.f32") + " " +
                            std::to_string(kImages) + ",1,28,28 " + tmp.file(label + ".f32");
    ASSERT_EQ(shell(cmd), 0) << cmd;
    const auto ort = read_floats(tmp.file(label + ".f32"), {kImages, 10});
    const auto ours = deployed_logits(d.graph, raw);
    const double same = argmax_agreement(ort, ours), diff = (ort - ours).abs().max().item<double>();
    const double range = ours.abs().max().item<double>();
    std::fprintf(stderr, "[ %s onnx %s ] argmax agreement %.4f, max |logit diff| %.4g (logit range %.3g)\n",
                 kind().c_str(), label.c_str(), same, diff, range);
    RecordProperty(label + "_max_abs_logit_diff", std::to_string(diff));
    // ONNX Runtime and oneDNN round their requantizations differently
    // (factorized layers requantize twice): the logits stay within a few
    // percent of their range, and only images that are near-ties may flip.
    EXPECT_LE(diff, 0.05 * range) << label;
    EXPECT_GE(decided_agreement(ort, ours, 0.05 * range), 0.99) << label;
  });
}

TEST_P(Exports, TorchScriptReloadsAndRunsIdentically) {
  TempDir tmp("ts");
  const auto raw = raw_pixels(kImages);
  std::vector<std::pair<std::string, at::Tensor>> reloaded;  // (export folder, C++ logits)
  for_each_export(kind(), "torchscript", tmp, [&](const std::string& label, const supernet::SubnetSpec&, const Deployed& d,
                                          const std::string& dir) {
    deploy::use_onednn_engine();  // packed params are rebuilt for the current engine on load
    auto m = torch::jit::load(dir + "/model.pt");
    c10::InferenceMode guard;
    const auto cpp = m.forward({raw}).toTensor();
    EXPECT_GE(argmax_agreement(cpp, deployed_logits(d.graph, raw)), 0.99) << label;
    reloaded.emplace_back(dir, cpp);
  });
  // Python's torch.jit.load, where python3-torch is installed (scripts/install-deps.sh
  // --bench): one interpreter reloads every export (importing torch dominates).
  if (shell("/usr/bin/python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(\"torch\") is None)'") != 0) {
    std::fprintf(stderr, "[ torchscript ] python3-torch not installed: Python reload not checked\n");
    return;
  }
  write_floats(tmp.file("pixels.f32"), raw);
  std::string dirs;
  for (const auto& [dir, cpp] : reloaded) dirs += "'" + dir + "',";
  const std::string py =
      "import torch, numpy as np; torch.backends.quantized.engine = 'onednn'; "
      "x = torch.from_numpy(np.fromfile('" + tmp.file("pixels.f32") + "', np.float32).reshape(-1, 1, 28, 28)); "
      "[torch.jit.load(d + '/model.pt')(x).detach().numpy().astype(np.float32).tofile(d + '/py.f32') for d in [" +
      dirs + "]]";
  ASSERT_EQ(shell("/usr/bin/python3 -c \"" + py + "\""), 0) << py;
  for (const auto& [dir, cpp] : reloaded) EXPECT_TRUE(read_floats(dir + "/py.f32", {kImages, 10}).equal(cpp)) << dir;
}

TEST_P(Exports, SafetensorsReloadsTheSameModel) {
  TempDir tmp("st");
  const auto raw = raw_pixels(kImages);
  for_each_export(kind(), "safetensors", tmp, [&](const std::string& label, const supernet::SubnetSpec& spec,
                                          const Deployed& d, const std::string& dir) {
    const auto loaded = deploy::load_deployed(dir);
    EXPECT_EQ(loaded.spec, supernet::to_json(spec));
    if (label == "methods") {  // the export holds scale nodes and general grids
      int scales = 0, general = 0;
      for (const auto& n : loaded.graph.nodes) scales += n.kind == deploy::OpKind::kScale, general += n.general_grid();
      EXPECT_GT(scales, 0);
      EXPECT_GT(general, 0);
    }
    EXPECT_EQ(loaded.graph.model_bytes(), d.graph.model_bytes());
    EXPECT_TRUE(deployed_logits(loaded.graph, raw).equal(deployed_logits(d.graph, raw))) << label;
    // model_bytes is what the export stores: the tensors' bytes plus an fp32
    // scale and a uint8 zero point per calibrated activation.
    const auto file_bytes = int64_t(std::filesystem::file_size(dir + "/model.safetensors"));
    const auto st = core::read_text_file(dir + "/model.safetensors", "safetensors");
    uint64_t header = 0;
    for (int i = 0; i < 8; ++i) header |= uint64_t(uint8_t(st[size_t(i)])) << (8 * i);
    EXPECT_EQ(file_bytes - 8 - int64_t(header) + 5 * d.graph.own_act_params(), d.graph.model_bytes()) << label;
  });
}

QNAS_FOR_EVERY_FAMILY(Exports);
