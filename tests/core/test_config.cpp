// Config: every error path names the key path and what was expected;
// --set overrides; the resolved config round-trips.
#include <gtest/gtest.h>

#include <fstream>

#include "src/core/config.hpp"
#include "src/core/error.hpp"
#include "src/core/runtime.hpp"

using namespace qnas;

namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    core::parse_config(yaml, "test.yaml", sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_contains(const std::string& text, const std::string& fragment) {
  EXPECT_NE(text.find(fragment), std::string::npos) << "message: " << text << "\nmissing: " << fragment;
}

}  // namespace

TEST(Config, EmptyFileGivesDefaults) {
  const auto c = core::parse_config("", "empty.yaml");
  EXPECT_EQ(c.train.epochs, core::TrainConfig{}.epochs);
  EXPECT_EQ(c.supernet.kind, "mbv3");
}

TEST(Config, ReadsTypedValues) {
  const auto c = core::parse_config(R"(
seed: 3
threads: 1
data: {dir: /tmp/x, train_subset: 500}
supernet: {kernel: [3, 5], stages: [{width: 16, stride: 1}, {width: 32, se: true}]}
train: {epochs: 4, lr: 0.05, augment: {hflip: false}}
)", "t.yaml");
  EXPECT_EQ(c.seed, 3u);
  EXPECT_EQ(c.data.dir, "/tmp/x");
  EXPECT_EQ(c.data.train_subset, 500);
  EXPECT_EQ(c.supernet.mbv3.kernel, (std::vector<int>{3, 5}));
  ASSERT_EQ(c.supernet.mbv3.stages.size(), 2u);
  EXPECT_EQ(c.supernet.mbv3.stages[0].stride, 1);
  EXPECT_TRUE(c.supernet.mbv3.stages[1].se);
  EXPECT_EQ(c.supernet.mbv3.stages[1].act, "relu");  // default kept
  EXPECT_EQ(c.train.epochs, 4);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.05);
  EXPECT_FALSE(c.train.augment.hflip);
}

TEST(Config, UnknownKeySuggestsNearestKey) {
  const auto msg = error_of("train:\n  epoch: 3\n");
  expect_contains(msg, "test.yaml");
  expect_contains(msg, "train.epoch (line 2): unknown key; did you mean 'train.epochs'?");
}

TEST(Config, KeyInWrongSectionSuggestsItsHome) {
  expect_contains(error_of("epochs: 3\n"), "epochs (line 1): unknown key; did you mean 'train.epochs'?");
}

TEST(Config, HopelessKeyListsValidKeys) {
  expect_contains(error_of("data: {zzzzzzzz: 1}\n"), "valid keys here: format, dir, cifar_labels");
}

TEST(Config, WrongTypeNamesKeyAndExpectedForm) {
  expect_contains(error_of("train: {epochs: three}\n"), "train.epochs (line 1): expected an integer in [1, 100000], got 'three'");
  expect_contains(error_of("train: {epochs: 2.5}\n"), "expected an integer in [1, 100000], got '2.5'");
  expect_contains(error_of("train: {nesterov: maybe}\n"), "train.nesterov (line 1): expected a boolean");
  expect_contains(error_of("train: 5\n"), "train (line 1): expected a section");
  expect_contains(error_of("seed: -1\n"), "seed (line 1): expected a non-negative integer, got '-1'");
}

TEST(Config, OutOfRangeAndNotAChoice) {
  expect_contains(error_of("train: {lr: -1}\n"), "train.lr (line 1): expected a number in [0, 100], got '-1'");
  expect_contains(error_of("device: gpu\n"), "device (line 1): expected one of {cpu, cuda}, got 'gpu'");
  expect_contains(error_of("supernet: {kernel: [3, 4]}\n"),
                  "supernet.kernel.1 (line 1): expected one of {3, 5, 7}, got '4'");
  expect_contains(error_of("supernet: {kernel: []}\n"), "supernet.kernel (line 1): expected a list of integers, each one of {3, 5, 7}, not empty");
  expect_contains(error_of("quant: {weight_bits: [4, 4]}\n"), "expected distinct values");
  expect_contains(error_of("supernet: {stages: [{width: 0}]}\n"), "supernet.stages.0.width (line 1): expected an integer in [1, 4096], got '0'");
}

TEST(Config, ReportsEveryProblemAtOnce) {
  const auto msg = error_of("train: {epochs: 0, lr: x}\nbogus: 1\n");
  expect_contains(msg, "train.epochs");
  expect_contains(msg, "train.lr");
  expect_contains(msg, "bogus");
}

TEST(Config, YamlSyntaxErrorNamesLine) {
  expect_contains(error_of("train:\n  epochs: [1, 2\n"), "test.yaml: not valid YAML at line");
}

TEST(Config, SetOverridesAnyKey) {
  const auto c = core::parse_config("train: {epochs: 2}\n", "t.yaml",
                                    {"train.epochs=5", "supernet.kernel=[3]", "supernet.stages.0.width=8",
                                     "data.dir=/elsewhere", "train.augment.hflip=false"});
  EXPECT_EQ(c.train.epochs, 5);
  EXPECT_EQ(c.supernet.mbv3.kernel, (std::vector<int>{3}));
  EXPECT_EQ(c.supernet.mbv3.stages[0].width, 8);
  EXPECT_EQ(c.data.dir, "/elsewhere");
  EXPECT_FALSE(c.train.augment.hflip);
}

TEST(Config, SetErrorsAreClear) {
  expect_contains(error_of("", {"train.epoch=5"}), "train.epoch (from --set): unknown key; did you mean 'train.epochs'?");
  expect_contains(error_of("", {"train.epochs=abc"}), "train.epochs (from --set): expected an integer in [1, 100000], got 'abc'");
  expect_contains(error_of("", {"train.epochs"}), "--set 'train.epochs': expected key.path=value");
  expect_contains(error_of("", {"supernet.stages.9.width=8"}), "index 9 is past the end of a list of 3");
  expect_contains(error_of("", {"train..epochs=1"}), "empty segment");
}

TEST(Config, ResolvedConfigRoundTrips) {
  const auto c = core::parse_config("seed: 9\ntrain: {lr: 0.0123, epochs: 7}\nsupernet: {kernel: [5, 7]}\n", "t.yaml");
  const std::string yaml = core::to_yaml(c);
  const auto back = core::parse_config(yaml, "resolved.yaml");
  EXPECT_EQ(core::to_yaml(back), yaml);
  EXPECT_EQ(back.seed, 9u);
  EXPECT_DOUBLE_EQ(back.train.lr, 0.0123);
  EXPECT_EQ(back.supernet.mbv3.kernel, (std::vector<int>{5, 7}));
  EXPECT_NE(yaml.find("lr: 0.0123"), std::string::npos) << yaml;  // shortest round-trip form
}

TEST(Config, ReferenceListsEveryKey) {
  const auto md = core::config_reference_markdown();
  for (const char* key : {"`data.dir`", "`data.train_subset`", "`supernet.kind`", "`train.epochs`",
                          "`train.batch_size`", "`threads`", "`device`", "`output.dir`", "`supernet.stages.N.width`"})
    expect_contains(md, key);
}

TEST(ConfigFamilies, KindSelectsTheFamilysKeysAndDefaults) {
  const auto c = core::parse_config(R"(
supernet:
  kind: resnet
  stages: [{width: 32, stride: 1}, {width: 64}]
  expand_pct: [25, 50]
  width_scope: global
)", "r.yaml");
  EXPECT_EQ(c.supernet.kind, "resnet");
  ASSERT_EQ(c.supernet.resnet.stages.size(), 2u);
  EXPECT_EQ(c.supernet.resnet.stages[0].stride, 1);
  EXPECT_EQ(c.supernet.resnet.stages[1].stride, 2);  // the stage default
  EXPECT_EQ(c.supernet.resnet.expand_pct, (std::vector<int>{25, 50}));
  EXPECT_EQ(c.supernet.resnet.width_pct, core::ResNetConfig{}.width_pct);
  EXPECT_EQ(c.supernet.resnet.width_scope, "global");
  // The resolved config holds the resnet keys only, and reads back the same.
  const std::string yaml = core::to_yaml(c);
  EXPECT_EQ(yaml.find("kernel_transform"), std::string::npos) << yaml;
  EXPECT_EQ(core::to_yaml(core::parse_config(yaml, "resolved.yaml")), yaml);
  // --set picks the family too, with its defaults under the file's other keys.
  const auto s = core::parse_config("train: {epochs: 2}\n", "t.yaml", {"supernet.kind=resnet", "supernet.depth=[1]"});
  EXPECT_EQ(s.supernet.kind, "resnet");
  EXPECT_EQ(s.supernet.resnet.depth, (std::vector<int>{1}));
  EXPECT_EQ(s.supernet.resnet.stages.size(), core::ResNetConfig{}.stages.size());
}

TEST(ConfigFamilies, AnotherFamilysKeyIsNamedWithItsFamily) {
  const auto msg = error_of("supernet:\n  kind: mbv3\n  expand_pct: [25]\n");
  expect_contains(msg, "supernet.expand_pct (line 3): a key of the resnet family, but supernet.kind is mbv3; "
                       "expected mbv3's keys here: kind, stem_width");
  expect_contains(error_of("supernet: {kind: resnet, kernel: [3]}\n"),
                  "supernet.kernel (line 1): a key of the mbv3 family, but supernet.kind is resnet");
  expect_contains(error_of("supernet: {kind: resnet, stages: [{width: 64, se: true}]}\n"),
                  "supernet.stages.0.se (line 1): a key of the mbv3 family, but supernet.kind is resnet");
  // A key no family has is still a typo with a suggestion.
  expect_contains(error_of("supernet: {kind: resnet, widht_pct: [50]}\n"),
                  "supernet.widht_pct (line 1): unknown key; did you mean 'supernet.width_pct'?");
}

TEST(ConfigFamilies, BadKindAndChoicesAreNamed) {
  expect_contains(error_of("supernet:\n  kind: vgg\n"), "supernet.kind (line 2): expected one of {mbv3, resnet, vit}, got 'vgg'");
  expect_contains(error_of("supernet:\n  kind: resnet\n  expand_pct: [25, 0]\n"),
                  "supernet.expand_pct.1 (line 3): expected an integer in [1, 100], got '0'");
  expect_contains(error_of("supernet: {kind: resnet, width_scope: block}\n"),
                  "supernet.width_scope (line 1): expected one of {stage, global}, got 'block'");
  expect_contains(error_of("supernet: {kind: resnet, stem_stride: 3}\n"), "supernet.stem_stride (line 1)");
  // vit: an MLP ratio outside 1..8, an unknown pooling (heads that do not
  // divide the embedding and patches that do not tile the image are the
  // supernet's errors: tests/supernet/test_vit.cpp).
  expect_contains(error_of("supernet: {kind: vit, mlp_ratio: [2, 9]}\n"),
                  "supernet.mlp_ratio.1 (line 1): expected an integer in [1, 8], got '9'");
  expect_contains(error_of("supernet: {kind: vit, pool: max}\n"),
                  "supernet.pool (line 1): expected one of {cls, mean}, got 'max'");
}

TEST(ConfigFamilies, ReferenceDocumentsEveryFamilysKeys) {
  const auto md = core::config_reference_markdown();
  for (const char* key : {"`supernet.kernel_transform` (mbv3)", "`supernet.stages.N.se` (mbv3)",
                          "`supernet.expand_pct` (resnet)", "`supernet.stem_stride` (resnet)",
                          "`supernet.stages.N.width` (resnet)", "`supernet.stages.N.width` (mbv3)",
                          "`supernet.patch` (vit)", "`supernet.mlp_ratio` (vit)", "`supernet.dropout` (vit)"})
    expect_contains(md, key);
  EXPECT_EQ(core::supernet_kinds(), (std::vector<std::string>{"mbv3", "resnet", "vit"}));
}

TEST(Config, EditDistance) {
  EXPECT_EQ(core::edit_distance("epoch", "epochs"), 1u);
  EXPECT_EQ(core::edit_distance("", "abc"), 3u);
  EXPECT_EQ(core::edit_distance("kitten", "sitting"), 3u);
}

TEST(Config, ReadmeReferenceIsCurrent) {
  // The README's config table is `qnas config --reference`: keep them equal.
  std::ifstream in(std::string(QNAS_SOURCE_DIR) + "/README.md");
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- config-reference:begin -->\n", end = "<!-- config-reference:end -->";
  const auto b = readme.find(begin), e = readme.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(readme.substr(b + begin.size(), e - b - begin.size()), core::config_reference_markdown())
      << "regenerate the README table with: build/qnas config --reference";
}

TEST(Runtime, CudaIsRefusedNotIgnored) {
  core::Config c;
  c.device = "cuda";
  try {
    core::init_runtime(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    expect_contains(e.what(), "device: 'cuda'");
    expect_contains(e.what(), "expected 'cpu'");
  }
}

// Found by fuzz_config (tests/fuzz/corpus/config/set_into_scalar.yaml): a
// --set path through a scalar made yaml-cpp throw its own exception.
TEST(Config, SetThroughAScalarIsAClearError) {
  const auto scalar = error_of("quant: 4\n", {"quant.weight_bits=[4]"});
  for (const char* f : {"--set 'quant.weight_bits=[4]'", "'quant' is a scalar", "expected a mapping"}) expect_contains(scalar, f);
  const auto in_list = error_of("supernet: {stages: [3]}\n", {"supernet.stages.0.width=8"});
  for (const char* f : {"'supernet.stages.0' is a scalar", "no key 'width'"}) expect_contains(in_list, f);
}

// Hostile configs: nesting deep enough to overflow a recursive parser, and a
// --set path as deep, are clear errors naming the file, never a crash.
TEST(Config, DeeplyNestedYamlIsAClearError) {
  const std::string deep = "seed: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  const auto e = error_of(deep);
  expect_contains(e, "test.yaml");
  expect_contains(e, "not valid YAML");
  std::string block;
  for (int i = 0; i < 3000; ++i) block += std::string(size_t(2 * i), ' ') + "k" + std::to_string(i) + ":\n";
  expect_contains(error_of(block), "test.yaml");
  std::string path = "train";
  for (int i = 0; i < 5000; ++i) path += ".x";
  expect_contains(error_of("", {path + "=1"}), "--set");
}

// Found by fuzz_config (its input: tests/fuzz/corpus/config/crash_complex_key_found.yaml):
// valid YAML with a map or list as a key escaped as a yaml-cpp exception.
TEST(Config, AComplexKeyIsAClearError) {
  for (const std::string yaml : {"? [a, b]\n: 1\n", "supernet:\n  ? kind: resnet\n    stem_width: 16\n"}) {
    const auto e = error_of(yaml);
    expect_contains(e, "test.yaml at line");
    expect_contains(e, "expected sections of plain names and values");
  }
}
