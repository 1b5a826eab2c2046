// Exports refuse bad input and leave nothing behind. (Every family's exports
// are reloaded and compared in tests/families/test_exports.cpp.)
#include <gtest/gtest.h>

#include <torch/script.h>

#include <cstdlib>
#include <filesystem>

#include "src/core/fs.hpp"
#include "src/deploy/export.hpp"
#include "tests/deploy/deploy_fixture.hpp"

using namespace qnas;
using namespace qnas::testing;

TEST(Export, BadInputLeavesNothingBehind) {
  auto net = trained_tiny_net();
  const auto spec = supernet::largest_spec(net->space(), policy(8, 8));
  auto d = deploy_spec(net, spec);
  TempDir tmp("bad");
  // Occupied folder: refused before writing; --force replaces it whole.
  core::write_file_atomic(tmp.file("busy/keep.txt"), "x");
  expect_error([&] { export_to(d.graph, spec, "onnx", tmp.file("busy")); }, {"exists and is not empty", "--force"});
  deploy::ExportOptions o;
  o.out_dir = tmp.file("busy");
  o.overwrite = true;
  deploy::export_graph(d.graph, o);
  EXPECT_FALSE(core::file_exists(tmp.file("busy/keep.txt")));
  EXPECT_TRUE(core::file_exists(tmp.file("busy/model.onnx")));
  // Unwritable location (a path under a regular file).
  expect_error([&] { export_to(d.graph, spec, "safetensors", tmp.file("busy/model.onnx/sub")); }, {"cannot"});
  expect_error([&] { deploy::parse_export_format("tflite"); }, {"'tflite'", "onnx, torchscript or safetensors"});
  // Uncalibrated graph.
  auto raw_graph = d.graph;
  raw_graph.calibrated = false;
  expect_error([&] { export_to(raw_graph, spec, "onnx", tmp.file("nocal")); }, {"not calibrated"});
  // A malformed safetensors folder is a clear error on load.
  core::write_file_atomic(tmp.file("broken/subnet.json"), "{\"format\": \"other\"}");
  expect_error([&] { deploy::load_deployed(tmp.file("broken")); }, {"expected qnas-deployed-graph"});
  // Nothing but what the test made itself.
  for (const auto& f : std::filesystem::directory_iterator(tmp.str()))
    EXPECT_EQ(f.path().filename().string().find(".tmp."), std::string::npos) << f.path();
  EXPECT_FALSE(core::file_exists(tmp.file("nocal")));
}

// Colour images with a mean and std per channel: every export takes raw
// pixels and normalises each channel inside the model, as qnas does.
TEST(Export, EveryExportNormalisesEachChannelOfRawPixels) {
  torch::manual_seed(3);
  auto net = supernet::make_supernet(tiny_config(), {3, 28, 28, 10});
  const auto spec = supernet::largest_spec(net->space());  // fp32: outputs comparable to float rounding
  const deploy::InputDesc input{3, 28, 28, {0.2, 0.5, 0.7}, {0.3, 0.2, 0.25}};
  const auto raw = at::rand({16, 3, 28, 28});
  const auto normalised = deploy::normalize_input(raw, input);
  // Channel c is (raw - mean[c]) / std[c].
  EXPECT_TRUE(at::allclose(normalised.select(1, 2), (raw.select(1, 2) - 0.7f) / 0.25f));
  Deployed d{net->extract(spec), {}};
  eval::recalibrate_bn(*d.subnet, normalised.contiguous(at::MemoryFormat::ChannelsLast), 16);
  d.subnet->fold_bn();
  d.graph = deploy::build_graph(*d.subnet, input);
  deploy::calibrate(d.graph, normalised.contiguous(at::MemoryFormat::ChannelsLast), 16);
  const auto ours = deployed_logits(d.graph, raw);
  // Normalising every channel with channel 0's values would change the logits this much.
  deploy::InputDesc one = input;
  one.mean.assign(3, 0.2), one.std.assign(3, 0.3);
  const double wrong = (deploy::simulate(d.graph, deploy::normalize_input(raw, one)) - ours).abs().max().item<double>();
  ASSERT_GT(wrong, 1e-2);

  TempDir tmp("rgb");
  write_floats(tmp.file("pixels.f32"), raw);
  const std::string runner = std::string(QNAS_SOURCE_DIR) + "/tests/node/run_onnx.js";
  const std::string onnx = export_to(d.graph, spec, "onnx", tmp.file("onnx"));
  const std::string cmd = "node " + runner + " " + onnx + "/model.onnx " + tmp.file("pixels.f32") + " 16,3,28,28 " +
                          tmp.file("ort.f32") + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_LT((read_floats(tmp.file("ort.f32"), {16, 10}) - ours).abs().max().item<double>(), 1e-3);

  deploy::use_onednn_engine();
  auto ts = torch::jit::load(export_to(d.graph, spec, "torchscript", tmp.file("ts")) + "/model.pt");
  EXPECT_LT((ts.forward({raw}).toTensor() - ours).abs().max().item<double>(), 1e-3);

  const auto loaded = deploy::load_deployed(export_to(d.graph, spec, "safetensors", tmp.file("st")));
  EXPECT_EQ(loaded.graph.input_desc.mean, input.mean);
  EXPECT_EQ(loaded.graph.input_desc.std, input.std);
  EXPECT_TRUE(deployed_logits(loaded.graph, raw).equal(ours));
}
