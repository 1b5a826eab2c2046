// End to end in-process: a tiny supernet trains on a data subset well above
// chance, and interrupted-then-resumed training ends with exactly the
// weights of an uninterrupted run (one thread).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <filesystem>
#include <set>

#include "src/core/dataset.hpp"
#include "src/core/fs.hpp"
#include "src/core/image_codec.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"
#include "supernet/checkpoint.hpp"
#include "tests/test_util.hpp"

using namespace qnas;

using qnas::testing::expect_same_weights;
using qnas::testing::train;

namespace {
// The tiny config on 600 training images, 2 epochs, no validation.
core::Config two_short_epochs(const std::string& dir) {
  auto cfg = qnas::testing::tiny_config(dir);
  cfg.train.epochs = 2;
  cfg.data.train_subset = 600;
  cfg.data.val_size = 100;
  cfg.train.eval_every = 0;
  return cfg;
}
}  // namespace

TEST(EndToEnd, TinySupernetLearnsAndResumesExactly) {
  qnas::testing::TempDir full_dir("full"), cut_dir("cut");
  const auto cfg_full = qnas::testing::tiny_config(full_dir.str());
  const auto full = train(cfg_full);

  // Trained subnets score well above chance (10 classes) on held-out images.
  auto session = eval::open_session(cfg_full, supernet::checkpoint_path(full_dir.str()));
  eval::Evaluator evaluator(cfg_full, session.net, session.data);
  const auto largest = evaluator.evaluate(supernet::largest_spec(session.net->space()), "val");
  const auto smallest = evaluator.evaluate(supernet::smallest_spec(session.net->space()), "val");
  EXPECT_GT(largest.metrics.at("top1"), 50.0);  // chance: 10%
  EXPECT_GT(smallest.metrics.at("top1"), 45.0);
  // Quantized to w8a8 the largest loses little.
  quant::LayerPolicy w8a8{8, 8, "rtn", {}};
  const auto q = evaluator.evaluate(supernet::with_uniform_policy(largest.spec, w8a8), "val");
  EXPECT_GT(q.metrics.at("top1"), largest.metrics.at("top1") - 3.0);

  // Stop after epoch 1, resume in a new session: identical weights.
  const auto cfg_cut = qnas::testing::tiny_config(cut_dir.str());
  train(cfg_cut, /*stop_after=*/1);
  const auto resumed = train(cfg_cut, -1, /*resume=*/true);
  expect_same_weights(full, resumed);
  // The log holds one row per epoch, not a duplicate.
  const auto log = core::read_text_file(cut_dir.file("train_log.csv"), "log");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 4);
}

TEST(EndToEnd, ResumeRefusesACheckpointOfAnotherSpace) {
  qnas::testing::TempDir dir("space");
  auto cfg = qnas::testing::tiny_config(dir.str());
  cfg.train.epochs = 1;
  cfg.data.train_subset = 700;
  cfg.data.val_size = 100;
  train(cfg);
  cfg.supernet.mbv3.expand = {2, 4};
  qnas::testing::expect_error([&] { train(cfg, -1, true); },
                              {"supernet.pt' was trained on a different supernet", "supernet.expand: checkpoint [2,3], config [2,4]"});
  // Without --resume an existing checkpoint is not overwritten.
  cfg = qnas::testing::tiny_config(dir.str());
  qnas::testing::expect_error([&] { train(cfg); }, {"exists; expected --resume"});
}

// A folder streamed from disk (data.storage: stream) trains exactly as the
// same folder decoded into memory: the same batches, augmentation included.
TEST(EndToEnd, StreamedFolderTrainsExactlyAsTheFolderInMemory) {
  qnas::testing::TempDir data_dir("png"), memory_dir("memory"), stream_dir("stream");
  core::DataConfig source;
  source.train_subset = 400;
  source.val_size = 0;
  const auto fm = core::load_dataset(source, 0);
  for (const auto& [split, n] : {std::pair{&fm.train, int64_t(400)}, {&fm.test, int64_t(50)}}) {
    const std::string root = data_dir.file(split == &fm.train ? "train" : "test");
    for (int64_t i = 0; i < n; ++i) {
      const std::string class_dir = root + "/" + std::to_string(split->labels[i].item<int64_t>());
      std::filesystem::create_directories(class_dir);
      const auto px = split->pixels[i].contiguous();
      core::write_png(class_dir + "/" + std::to_string(i) + ".png",
                      core::Image{1, 28, 28, std::vector<uint8_t>(px.data_ptr<uint8_t>(), px.data_ptr<uint8_t>() + 784)});
    }
  }
  const auto folder_config = [&](const std::string& out, const std::string& storage) {
    auto cfg = two_short_epochs(out);
    cfg.data.format = "folder";
    cfg.data.dir = data_dir.str();
    cfg.data.storage = storage;
    cfg.data.train_subset = 0;
    cfg.data.val_from = "random";
    cfg.data.workers = 2;
    cfg.train.augment.crop_padding = 2;
    cfg.train.augment.hflip = true;
    return cfg;
  };
  const auto held = train(folder_config(memory_dir.str(), "memory"));
  const auto streamed = train(folder_config(stream_dir.str(), "stream"));
  expect_same_weights(held, streamed);
}

// train.optimizer: adamw with the family's decay groups, resumed exactly, and
// only with the optimizer whose state the checkpoint holds.
TEST(EndToEnd, AdamWTrainsInTwoGroupsResumesExactlyAndKeepsItsSetting) {
  qnas::testing::TempDir full_dir("adamw_full"), cut_dir("adamw_cut");
  auto cfg = two_short_epochs(full_dir.str());
  cfg.train.optimizer = "adamw";
  cfg.train.lr = 2e-3;
  cfg.train.weight_decay = 0.05;
  {
    auto session = eval::open_session(cfg);
    supernet::Trainer trainer(cfg, session.net, session.data);
    ASSERT_NE(dynamic_cast<torch::optim::AdamW*>(&trainer.optimizer()), nullptr);
    const auto& groups = trainer.optimizer().param_groups();
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(static_cast<const torch::optim::AdamWOptions&>(groups[0].options()).weight_decay(), 0.05);
    EXPECT_EQ(static_cast<const torch::optim::AdamWOptions&>(groups[1].options()).weight_decay(), 0.0);
    EXPECT_FALSE(groups[0].params().empty());
    EXPECT_FALSE(groups[1].params().empty());
  }
  const auto full = train(cfg);
  auto cut = cfg;
  cut.output.dir = cut_dir.str();
  train(cut, /*stop_after=*/1);
  auto other = cut;
  other.train.optimizer = "sgd";
  qnas::testing::expect_error([&] { train(other, -1, true); },
                              {"holds the state of train.optimizer: adamw", "expected sgd"});
  expect_same_weights(full, train(cut, -1, /*resume=*/true));
}

// train.quant_aware: the teacher stays fp32, the other subnets of a step
// draw their policies from the space's choices; a checkpoint is resumed
// only with the setting it was trained with. (That it resumes exactly is
// in the conformance suite, tests/families, for every family.)
TEST(EndToEnd, QuantAwareTrainingSamplesPoliciesAndKeepsItsSetting) {
  qnas::testing::TempDir cut_dir("qat_cut");
  auto cfg = two_short_epochs(cut_dir.str());
  cfg.train.quant_aware = true;
  {
    auto session = eval::open_session(cfg);
    supernet::Trainer trainer(cfg, session.net, session.data);
    core::Rng sampler(5);
    std::set<std::pair<int, int>> seen;
    for (int step = 0; step < 20; ++step) {
      const auto specs = trainer.sandwich(sampler);
      ASSERT_EQ(specs.size(), 3u);
      for (const auto& [layer, p] : specs[0].policy) EXPECT_EQ(p, quant::LayerPolicy{}) << layer;
      for (size_t i = 1; i < specs.size(); ++i)
        for (const auto& [layer, p] : specs[i].policy) {
          EXPECT_TRUE(p.weight_bits == 4 || p.weight_bits == 8 || p.weight_bits == 32) << layer;
          EXPECT_TRUE(p.act_bits == 8 || p.act_bits == 32) << layer;
          seen.insert({p.weight_bits, p.act_bits});
        }
    }
    EXPECT_EQ(seen.size(), 6u);  // every (weight, act) pair of the choices occurs
  }
  auto cut = cfg;
  train(cut, /*stop_after=*/1);
  cut.train.quant_aware = false;
  qnas::testing::expect_error([&] { train(cut, -1, true); }, {"was trained with train.quant_aware: true"});
}

// train.init_from: a fresh run starts from another checkpoint's weights and
// BN statistics (here a quantization-aware fine-tune of an fp32 supernet)
// with its own optimizer, schedule and progress; a missing file or a
// checkpoint of another space is refused by name.
TEST(EndToEnd, InitFromStartsAFreshRunFromAnotherCheckpointsWeights) {
  qnas::testing::TempDir source_dir("init_source"), tuned_dir("init_tuned"), fresh_dir("init_fresh");
  auto source_cfg = two_short_epochs(source_dir.str());
  source_cfg.train.epochs = 1;
  const auto source = train(source_cfg);

  auto tuned_cfg = two_short_epochs(tuned_dir.str());
  tuned_cfg.train.quant_aware = true;
  tuned_cfg.train.init_from = supernet::checkpoint_path(source_dir.str());
  const auto started = train(tuned_cfg, /*stop_after=*/0);
  expect_same_weights(source, started);
  const auto source_buffers = source->named_buffers();
  for (const auto& b : started->named_buffers()) EXPECT_TRUE(b.value().equal(source_buffers[b.key()])) << b.key();
  auto fresh_cfg = tuned_cfg;
  fresh_cfg.output.dir = fresh_dir.str();
  fresh_cfg.train.init_from.clear();
  EXPECT_FALSE(train(fresh_cfg, 0)->parameters()[0].equal(source->parameters()[0]));

  train(tuned_cfg, /*stop_after=*/1);
  auto session = eval::open_session(tuned_cfg);
  const auto progress = supernet::load_checkpoint(supernet::checkpoint_path(tuned_dir.str()), *session.net);
  EXPECT_EQ(progress.epochs_done, 1);  // its own count, not the source's
  EXPECT_TRUE(progress.quant_aware);

  auto missing = fresh_cfg;
  missing.train.init_from = fresh_dir.file("none/supernet.pt");
  qnas::testing::expect_error([&] { train(missing, 0); }, {"train.init_from: no file", "none/supernet.pt"});
  auto other_space = missing;
  other_space.train.init_from = tuned_cfg.train.init_from;
  other_space.supernet.mbv3.expand = {2, 4};
  qnas::testing::expect_error([&] { train(other_space, 0); }, {"was trained on a different supernet"});
}
