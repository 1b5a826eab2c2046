// Exports refuse bad input and leave nothing behind. (Every family's exports
// are reloaded and compared in tests/families/test_exports.cpp.)
#include <gtest/gtest.h>

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
