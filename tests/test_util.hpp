#pragma once
// Helpers shared by the test suites.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "src/core/config.hpp"
#include "src/core/error.hpp"

namespace qnas::testing {

/// Asserts that f throws qnas::Error whose message contains every fragment.
template <class F>
void expect_error(F f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "expected qnas::Error";
  } catch (const Error& e) {
    for (const auto& frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << "message: " << e.what() << "\nmissing: " << frag;
  }
}

/// A small supernet and data budget: trains in seconds on one thread.
inline core::Config tiny_config(const std::string& output_dir = "") {
  core::Config c;
  c.seed = 1;
  c.threads = 1;
  c.data.dir = QNAS_FMNIST_DIR;
  c.data.train_subset = 2500;
  c.data.val_size = 500;
  c.supernet.stem_width = 8;
  c.supernet.stages = {{16, 2, false, "relu"}, {24, 2, true, "hswish"}};
  c.supernet.kernel = {3, 5};
  c.supernet.expand = {2, 3};
  c.supernet.depth = {1, 2};
  c.supernet.head_width = 48;
  c.supernet.feature_width = 32;
  c.quant.weight_bits = {4, 8, 32};
  c.quant.act_bits = {8, 32};
  c.quant.calib_images = 128;
  c.train.epochs = 3;
  c.train.batch_size = 50;
  c.train.lr = 0.3;
  c.train.warmup_epochs = 0.1;
  c.train.random_subnets = 1;
  c.train.eval_images = 500;
  c.eval.batch_size = 250;
  c.eval.bn_calib_images = 250;
  c.output.dir = output_dir;
  return c;
}

/// A fresh, empty temporary folder, removed at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t")
      : path_(std::filesystem::temp_directory_path() /
              ("qnas_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

}  // namespace qnas::testing
