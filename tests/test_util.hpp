#pragma once
// Helpers shared by the test suites.

#include <gtest/gtest.h>

#include <torch/utils.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "src/core/config.hpp"
#include "src/core/error.hpp"
#include "src/eval/session.hpp"
#include "src/quant/policy.hpp"
#include "supernet/supernet.hpp"
#include "supernet/trainer.hpp"

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

/// A small supernet of family `kind` (its Family::tiny) and data budget:
/// trains in seconds on one thread.
inline core::Config tiny_config(const std::string& output_dir = "", const std::string& kind = "mbv3") {
  core::Config c;
  c.seed = 1;
  c.threads = 1;
  c.data.dir = QNAS_FMNIST_DIR;
  c.data.train_subset = 2500;
  c.data.val_size = 500;
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
  supernet::family(kind).tiny(c);  // last: a family may set its own training (vit: AdamW)
  return c;
}

/// The tiny supernet of `cfg` (seeded), untrained.
inline supernet::Supernet tiny_net(const core::Config& cfg) {
  torch::manual_seed(0);
  return supernet::make_supernet(cfg, {1, 28, 28, 10});
}
inline supernet::Supernet tiny_net(const std::string& kind = "mbv3") { return tiny_net(tiny_config("", kind)); }

inline quant::LayerPolicy policy(int w, int a) {
  quant::LayerPolicy p;
  p.weight_bits = w;
  p.act_bits = a;
  return p;
}

/// A policy of `method` with its parameters, checked as a config's would be.
inline quant::LayerPolicy method_policy(const std::string& method, int w, int a,
                                        std::map<std::string, double> params = {}) {
  auto p = policy(w, a);
  p.method = method;
  p.params = std::move(params);
  quant::check_policy(p, "test");
  return p;
}

/// The tiny supernet of family `kind` (seeded) with non-trivial BN
/// parameters and statistics and kernel transforms everywhere (a
/// zero-initialised last BN would hide a block's residual branch), in eval mode.
inline supernet::Supernet randomised_net(const core::Config& cfg,
                                         const supernet::InputShape& input = {1, 28, 28, 10}) {
  torch::manual_seed(0);
  auto net = supernet::make_supernet(cfg, input);
  at::NoGradGuard no_grad;
  for (auto& p : net->named_parameters()) {
    if (p.key().find("gamma") != std::string::npos) p.value().uniform_(0.5, 1.5);
    else if (p.key().find("beta") != std::string::npos) p.value().uniform_(-0.2, 0.2);
    else if (p.key().find("transform") != std::string::npos) p.value().add_(at::randn_like(p.value()) * 0.1);
  }
  for (auto& b : net->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.3, 0.3);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  net->eval();
  return net;
}

/// Trains cfg's supernet into cfg.output.dir (a fresh session): `stop_after`
/// epochs in this call (-1: all), continuing its checkpoint with `resume`.
inline supernet::Supernet train(const core::Config& cfg, int stop_after = -1, bool resume = false) {
  auto session = eval::open_session(cfg);
  supernet::Trainer trainer(cfg, session.net, session.data);
  supernet::TrainOptions options;
  options.resume = resume;
  options.stop_after_epochs = stop_after;
  trainer.run(options);
  return session.net;
}

/// Asserts that a and b hold equal parameters.
inline void expect_same_weights(const supernet::Supernet& a, const supernet::Supernet& b) {
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(item.value().equal(pb[item.key()])) << item.key();
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
