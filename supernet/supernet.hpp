#pragma once
// The weight-sharing supernet interface: a space of subnets, an elastic
// forward for training, and extraction of standalone subnets.

#include <torch/nn/module.h>

#include <memory>
#include <vector>

#include "src/core/config.hpp"
#include "supernet/space.hpp"
#include "supernet/subnet.hpp"

namespace qnas::supernet {

/// Shape of the data a supernet is built for.
struct InputShape {
  int64_t channels = 1, height = 28, width = 28, classes = 10;
};

class SupernetImpl : public torch::nn::Module {
 public:
  virtual ~SupernetImpl() = default;

  /// Every variable with its choices; policies' choices come from the config.
  virtual const SpaceDesc& space() const = 0;

  /// Logits of subnet `spec`: its architecture, and its policies only when
  /// quant_aware() (fake quantization, straight-through; otherwise fp32).
  /// Training mode uses batch statistics. Thread-safe: it reads weights and
  /// writes nothing.
  at::Tensor forward(const at::Tensor& x, const SubnetSpec& spec) { return forward_from_stem(stem(x, spec), spec); }

  /// The first part of subnet `spec`, the same for many subnets (all of them
  /// in fp32): a training step computes it once per distinct stem.
  virtual at::Tensor stem(const at::Tensor& x, const SubnetSpec& spec) = 0;
  /// True when stem(x, a) equals stem(x, b) for every x. The default: the
  /// stem is the layer "stem", the same in fp32 and otherwise when its policy is.
  virtual bool same_stem(const SubnetSpec& a, const SubnetSpec& b) const {
    return !quant_aware() || a.policy.at("stem") == b.policy.at("stem");
  }
  /// The rest of subnet `spec` from the stem's output.
  virtual at::Tensor forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) = 0;

  /// The family's one graph-building function: subnet b.spec() (validated
  /// here) as units and ops through `b`, in network order.
  virtual void build(SubnetBuilder& b) const = 0;

  /// A standalone copy of subnet `spec`: sliced, transformed weights, its
  /// policy recorded (applied later, after BN recalibration and folding).
  Subnet extract(const SubnetSpec& spec) const;

  /// What extract(spec)->layer_infos() returns, from shapes alone (build()
  /// on a shapes-only builder): cheap enough for exact cost proxies of
  /// thousands of candidates.
  std::vector<LayerInfo> layer_infos(const SubnetSpec& spec) const;

  /// Whether training applies weight decay to parameter `name` (a key of
  /// named_parameters()). The default: every parameter but BN's, biases and
  /// kernel transforms (pulling those towards 0 fights their identity init).
  virtual bool decays(const std::string& name) const;

  /// Quantization-aware forward (train.quant_aware): off by default, so
  /// evaluation (BN recalibration) always runs the fp32 weights.
  void set_quant_aware(bool on) { quant_aware_ = on; }
  bool quant_aware() const { return quant_aware_; }

 protected:
  /// The quantization an elastic forward of `spec` simulates (none unless quant_aware()).
  FakeQuant fake_quant(const SubnetSpec& spec) const { return quant_aware_ ? FakeQuant(spec.policy) : FakeQuant(); }

 private:
  bool quant_aware_ = false;
};
using Supernet = std::shared_ptr<SupernetImpl>;

/// One supernet family: what `supernet.kind` names, and how to build it.
/// Its config keys are its section of core::SupernetConfig.
struct Family {
  const char* kind;
  const char* summary;
  std::shared_ptr<SupernetImpl> (*make)(const core::Config& cfg, const InputShape& input);
  /// Makes cfg.supernet a small instance of the family (kind included) that
  /// trains in seconds: what the conformance tests run.
  void (*tiny)(core::Config& cfg);
  /// Epochs the tiny instance trains on the tests' 2,500 images to be well
  /// above chance (a transformer, without a CNN's priors, needs more).
  int tiny_epochs = 2;
};

/// Every family, in one explicit list (supernet/families.cpp).
const std::vector<Family>& families();
/// The family named `kind`; throws listing the families for another name.
const Family& family(const std::string& kind);

/// Builds the supernet named by cfg.supernet.kind (weights initialised from
/// the current LibTorch seed); throws listing the families for another name.
Supernet make_supernet(const core::Config& cfg, const InputShape& input);

}  // namespace qnas::supernet
