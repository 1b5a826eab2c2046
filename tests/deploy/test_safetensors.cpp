// Hostile export folders: every lie a safetensors header or a subnet.json can
// tell is refused with an error naming the file and the field, before
// anything the file claims is allocated, and never as a crash.
#include <gtest/gtest.h>

#include <fstream>

#include "src/core/fs.hpp"
#include "src/deploy/deployed_check.hpp"
#include "src/deploy/safetensors.hpp"
#include "tests/deploy/deploy_fixture.hpp"

using namespace qnas;
using namespace qnas::testing;
using nlohmann::json;

namespace {

// A container whose header is `header` (raw JSON text) followed by `data_bytes` zero bytes.
std::string container(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

void expect_refused(const std::string& bytes, const std::vector<std::string>& fragments) {
  expect_error([&] { deploy::parse_safetensors(bytes, "m.safetensors"); }, fragments);
}

}  // namespace

TEST(Safetensors, HeaderRoundTrips) {
  const std::vector<deploy::SafetensorsEntry> entries{{"a", "F32", {2, 3}, 0, 24}, {"b", "U8", {5}, 24, 29}};
  const auto bytes = deploy::safetensors_header({{"format", "x"}}, entries) + std::string(29, '\7');
  const auto file = deploy::parse_safetensors(bytes, "m.safetensors");
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.data_start % 8, 0u);
  EXPECT_EQ(file.find("a")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(file.find("b")->begin, 24u);
  EXPECT_EQ(file.metadata["format"], "x");
  EXPECT_EQ(file.find("c"), nullptr);
}

TEST(Safetensors, HostileHeadersAreClearErrors) {
  expect_refused("abc", {"m.safetensors", "3 bytes", "8-byte header length"});
  // A header length beyond the file, and one of 2^63 bytes: nothing allocated for either.
  expect_refused(container("{}", 0).substr(0, 8) + "{", {"header length 2", "file of 9 bytes"});
  std::string huge(8, '\0');
  huge[7] = '\x80';
  expect_refused(huge + "{}", {"header length 9223372036854775808"});
  expect_refused(container("{\"a\":", 0), {"header is not JSON"});
  expect_refused(container("[1,2]", 0), {"header is a JSON array", "expected an object"});
  expect_refused(container(std::string(100000, '[') + std::string(100000, ']'), 0), {"header is a JSON array"});
  expect_refused(container("{\"__metadata__\":{\"k\":1}}", 0), {"__metadata__ key 'k'", "expected a string"});
  expect_refused(container(R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", 2), {"tensor 'w'", "dtype \"F16\""});
  expect_refused(container(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "shape dimension -1"});
  // Shapes whose byte size overflows or exceeds the data: refused before any allocation.
  expect_refused(container(R"({"w":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
                 {"tensor 'w'", "needs more bytes than the file's 8 of data"});
  expect_refused(container(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", 8), {"needs more bytes"});
  expect_refused(container(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[4,2]}})", 4), {"data_offsets [4, 2]"});
  expect_refused(container(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,99]}})", 4), {"data_offsets [0, 99]"});
  expect_refused(container(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[-1,1]}})", 4), {"two integers >= 0"});
  expect_refused(container(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,3]}})", 3), {"span 3 bytes", "is 2 bytes"});
  expect_refused(container(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":1}})", 2), {"expected an object of dtype"});
  // Overlapping ranges, a hole, trailing bytes: the format forbids all three.
  expect_refused(container(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4),
                 {"overlaps"});
  expect_refused(container(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})", 6),
                 {"bytes [2, 4)", "no holes"});
  expect_refused(container(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 5), {"last 3 bytes"});
}

// A real export, then each lie told about it.
class HostileExport : public ::testing::Test {
 protected:
  void SetUp() override {
    auto net = tiny_net();  // untrained: the loader's checks need a real export, not a good one
    spec_ = supernet::largest_spec(net->space(), policy(4, 8));
    dir_ = export_to(deploy_spec(net, spec_).graph, spec_, "safetensors", tmp_.file("good"));
    doc_ = json::parse(core::read_text_file(dir_ + "/subnet.json", "test"));
    tensors_ = core::read_text_file(dir_ + "/model.safetensors", "test");
  }
  // A copy of the export with subnet.json and model.safetensors replaced.
  std::string write(const std::string& tag, const json& doc, const std::string& tensors) {
    const auto dir = tmp_.file(tag);
    core::write_file_atomic(dir + "/subnet.json", doc.dump());
    core::write_file_atomic(dir + "/model.safetensors", tensors);
    return dir;
  }
  std::string with_doc(const std::string& tag, const json& doc) { return write(tag, doc, tensors_); }
  // The first conv's node in subnet.json.
  json& first_layer(json& doc) {
    for (auto& n : doc["graph"]["nodes"])
      if (n["kind"] == "conv") return n;
    throw std::runtime_error("no conv");
  }

  TempDir tmp_{"hostile"};
  supernet::SubnetSpec spec_;
  std::string dir_;
  json doc_;
  std::string tensors_;
};

// One process per test (ctest): each lie shares the one export.
TEST_F(HostileExport, SubnetJsonLiesAreClearErrors) {
  EXPECT_GT(deploy::load_deployed(dir_).graph.nodes.size(), 5u);  // the export itself loads
  const auto deep = tmp_.file("deep");
  core::write_file_atomic(deep + "/subnet.json", std::string(200000, '[') + std::string(200000, ']'));
  core::write_file_atomic(deep + "/model.safetensors", tensors_);
  expect_error([&] { deploy::load_deployed(deep); }, {"subnet.json", "a JSON array", "expected a qnas-deployed-graph"});
  auto doc = doc_;
  auto& layer = first_layer(doc);
  const std::string name = layer["name"];
  layer["weight_shape"][1] = 99;  // no longer the stored tensor's size
  expect_error([&] { deploy::load_deployed(with_doc("shape", doc)); },
               {"model.safetensors: tensor '" + name + ".weight'", "subnet.json needs U8"});
  doc = doc_;
  first_layer(doc)["weight_bits"] = 8;  // the stored codes are 4-bit packed
  expect_error([&] { deploy::load_deployed(with_doc("bits", doc)); }, {name + ".weight", "is U8", "needs I8"});
  doc = doc_;
  first_layer(doc)["weight_bits"] = 5;
  expect_error([&] { deploy::load_deployed(with_doc("bits5", doc)); }, {"weight_bits = 5", "expected one of"});
  doc = doc_;
  first_layer(doc)["inputs"] = {123456};
  expect_error([&] { deploy::load_deployed(with_doc("input", doc)); },
               {"subnet.json", "graph.nodes[", "('" + name + "')", "reads value 123456"});
  doc = doc_;
  first_layer(doc)["groups"] = 7;
  expect_error([&] { deploy::load_deployed(with_doc("groups", doc)); }, {"groups = 7", "does not divide"});
  doc = doc_;
  first_layer(doc)["padding"] = 1000000000;
  expect_error([&] { deploy::load_deployed(with_doc("pad", doc)); }, {".padding = 1000000000", "expected an integer"});
  doc = doc_;
  std::swap(doc["graph"]["nodes"][0], doc["graph"]["nodes"][1]);  // a node before its input exists
  expect_error([&] { deploy::load_deployed(with_doc("order", doc)); }, {"graph.nodes[0]", "an earlier node's output"});
  doc = doc_;
  doc["graph"]["input"]["height"] = 1 << 20;
  expect_error([&] { deploy::load_deployed(with_doc("input_hw", doc)); }, {"graph.input", "65536"});
  doc = doc_;
  doc["graph"]["values"][1]["scale"] = -1;
  expect_error([&] { deploy::load_deployed(with_doc("scale", doc)); }, {"graph.values[1].scale", "positive"});
  doc = doc_;
  doc["graph"]["nodes"][2]["kind"] = "softmax";
  expect_error([&] { deploy::load_deployed(with_doc("kind", doc)); }, {"graph.nodes[2].kind = 'softmax'", "conv, linear"});
  doc = doc_;
  doc["graph"]["output"] = doc["graph"]["input"]["value"];
  expect_error([&] { deploy::load_deployed(with_doc("output", doc)); }, {"graph.output", "some node writes"});
  doc = doc_;
  doc["graph"].erase("values");
  expect_error([&] { deploy::load_deployed(with_doc("novalues", doc)); }, {"subnet.json", "graph has no 'values'"});
}

// A graph whose every field is sound but whose layers do not fit together:
// found by running one image, and reported naming the folder.
TEST_F(HostileExport, ShapesThatDoNotChainAreFoundByRunningOneImage) {
  auto doc = doc_;
  doc["graph"]["input"]["channels"] = 3;
  doc["graph"]["input"]["mean"] = {0.5, 0.5, 0.5};
  doc["graph"]["input"]["std"] = {0.5, 0.5, 0.5};
  const auto dir = with_doc("chain", doc);
  expect_error([&] { deploy::load_deployed(dir); }, {dir, "does not run on one image"});
}

TEST_F(HostileExport, SafetensorsLiesAreClearErrors) {
  const auto path = [](const std::string& dir) { return dir + "/model.safetensors"; };
  auto dir = write("truncated", doc_, tensors_.substr(0, tensors_.size() - 10));
  expect_error([&] { deploy::load_deployed(dir); }, {path(dir), "data_offsets [", "the data section's size"});
  dir = write("short", doc_, tensors_.substr(0, 20));
  expect_error([&] { deploy::load_deployed(dir); }, {path(dir), "header length"});
  // The header rewritten so one weight is I32 of a quarter of the elements: a
  // consistent container, but not what subnet.json says.
  auto file = deploy::parse_safetensors(tensors_, "good");
  const auto name = first_layer(doc_)["name"].get<std::string>() + ".weight_scale";
  for (auto& e : file.tensors)
    if (e.name == name) {
      e.dtype = "I32";
      e.shape = {e.numel()};
    }
  const auto rewritten = deploy::safetensors_header(file.metadata, file.tensors) + tensors_.substr(file.data_start);
  dir = write("dtype", doc_, rewritten);
  expect_error([&] { deploy::load_deployed(dir); }, {"tensor '" + name + "' is I32", "needs F32"});
  dir = write("missing", doc_, deploy::safetensors_header({}, {}));
  expect_error([&] { deploy::load_deployed(dir); }, {"model.safetensors has no tensor"});
}


// The fuzz target's seeds (tests/fuzz/make_deployed_seeds.py) are valid
// exports: loaded, and run on one image, they exercise the format's features.
TEST(Safetensors, FuzzSeedsAreLoadableExports) {
  TempDir tmp("seeds");
  const std::string separator = "\n--qnas-safetensors--\n";
  int seeds = 0;
  for (const auto& f : std::filesystem::directory_iterator(std::string(QNAS_SOURCE_DIR) + "/tests/fuzz/corpus/deployed")) {
    const auto text = core::read_text_file(f.path().string(), "seed");
    const auto at = text.find(separator);
    ASSERT_NE(at, std::string::npos) << f.path();
    const auto dir = tmp.file(f.path().filename().string());
    core::write_file_atomic(dir + "/subnet.json", text.substr(0, at));
    core::write_file_atomic(dir + "/model.safetensors", text.substr(at + separator.size()));
    const auto loaded = deploy::load_deployed(dir);
    EXPECT_GE(loaded.graph.nodes.size(), 5u) << f.path();
    ++seeds;
  }
  EXPECT_GE(seeds, 3);
}
