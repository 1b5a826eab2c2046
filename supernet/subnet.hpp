#pragma once
// A standalone subnet extracted from a supernet: plain convolution / linear
// units holding copies of the sliced weights, in fp32, wired by an op list
// that names no family (units, residual adds, gating, pooling, activations).
// The spec's per-layer policy travels with it; src/deploy/ turns a BN-folded subnet into the
// quantized graph that is simulated (fake quantization) or run on int8
// kernels.
//
// Life cycle used by the evaluator:
//   extract -> BN recalibration (fp32, train-mode statistics) -> fold_bn()
//   -> deploy::build_graph().

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "src/quant/policy.hpp"
#include "supernet/layer_info.hpp"
#include "supernet/ops.hpp"
#include "supernet/space.hpp"

namespace qnas::supernet {

struct UnitDesc {
  std::string name;
  std::string kind = "conv";  // conv | dwconv | linear
  int64_t in_channels = 0, out_channels = 0, kernel = 1, stride = 1;
  bool batch_norm = true;     // followed by BN (conv units); linear units carry a bias instead
                              // (squeeze-excitation layers are linear units on pooled vectors)
  Act act = Act::kNone;
  int64_t in_h = 1, in_w = 1;  // linear units: the positions (tokens) each input holds, in_h * in_w
  int64_t pad = -1;            // zeros on each side; -1: "same" (kernel / 2)

  int64_t groups() const { return kind == "dwconv" ? in_channels : 1; }
  /// Zeros on each side: "same" convolutions (kernel / 2) unless `pad` says
  /// otherwise (a ViT's patch embedding has none).
  int64_t padding() const { return pad >= 0 ? pad : kernel / 2; }
  int64_t out_h() const { return (in_h + 2 * padding() - kernel) / stride + 1; }
  int64_t out_w() const { return (in_w + 2 * padding() - kernel) / stride + 1; }
};

/// Shapes and cost of a unit from its description alone (no weights); the
/// policy is left at fp32.
LayerInfo info_of(const UnitDesc& desc);

/// Tensors that fill a unit (copied in). gamma/beta/mean/var only when the
/// unit has BN; bias only when it has none.
struct UnitWeights {
  at::Tensor weight, bias, gamma, beta, running_mean, running_var;
};

/// One compressible layer: conv (or depthwise conv, or linear) -> BN -> act.
class ConvUnitImpl : public torch::nn::Module {
 public:
  explicit ConvUnitImpl(UnitDesc desc);

  at::Tensor forward(const at::Tensor& x);

  void load(const UnitWeights& w);
  /// Folds BN into weight and bias (exact in fp32).
  void fold_bn();

  const UnitDesc& desc() const { return desc_; }
  /// Shapes and cost; the policy is filled in by the subnet from its spec.
  LayerInfo info() const;

  at::Tensor weight, bias;
  torch::nn::BatchNorm2d bn{nullptr};
  // After fold_bn(): the folded BN's gamma and beta (undefined without BN),
  // what recalibrating that BN after a change of the weights would restore.
  at::Tensor folded_gamma, folded_beta;

 private:
  UnitDesc desc_;
};
TORCH_MODULE(ConvUnit);

/// One step of an extracted subnet's op list. Values are numbered: 0 is the
/// input image, op i writes value i + 1.
enum class SubnetOpKind {
  kUnit,     // a compressible unit (conv / linear -> [BN] -> act) on inputs[0]
  kAdd,      // inputs[0] + inputs[1] (residual add)
  kGate,     // inputs[0] (N,C,H,W) * inputs[1] (N,C) per image and channel (SE gating)
  kMean,     // global average pooling (N,C,H,W) -> (N,C)
  kAct,      // an activation on its own (ReLU after a residual add)
  kDropout,  // dropout while training, the identity otherwise (not deployed)
  // Transformer ops (the vit family):
  kTokens,      // (N,C,H,W) -> (N,H*W,C) tokens
  kEmbed,       // [class token (`bias`), tokens] + positional embedding (`weight`: T x C)
  kLayerNorm,   // LayerNorm over channels: `weight` (gamma), `bias` (beta)
  kAttention,   // multi-head self-attention on projected (N,T,3*heads*head_dim) tokens
  kTokenMean,   // mean over tokens (N,T,C) -> (N,C)
  kClassToken,  // the first token (N,T,C) -> (N,C)
};

struct SubnetOp {
  SubnetOpKind kind = SubnetOpKind::kUnit;
  std::vector<int> inputs;
  std::string name;  // kUnit: the unit's name; otherwise the name its deployed node gets
  Act act = Act::kNone;  // kAct
  double p = 0;          // kDropout
  int64_t heads = 0, head_dim = 0;  // kAttention
  at::Tensor weight{}, bias{};      // kEmbed, kLayerNorm: the op's own parameters
};

/// An extracted subnet: a family-neutral op list over its units, built by a
/// family's extract() through SubnetBuilder. forward, layer_infos, the
/// lowering to deploy::Graph and everything after extraction read only this.
class SubnetImpl : public torch::nn::Module {
 public:
  /// `layers`: every layer in network order (the units' and the fp32
  /// transformer parts'), policies unset.
  SubnetImpl(SubnetSpec spec, std::vector<ConvUnit> units, std::vector<SubnetOp> ops, std::vector<LayerInfo> layers);

  at::Tensor forward(const at::Tensor& x);
  /// Compressible units in network order.
  const std::vector<ConvUnit>& units() const { return units_; }
  /// The unit named `name`; throws when there is none.
  const ConvUnit& unit(const std::string& name) const;
  const std::vector<SubnetOp>& ops() const { return ops_; }
  /// Every layer (compressible or not) in network order, for metrics.
  std::vector<LayerInfo> layer_infos() const;

  const SubnetSpec& spec() const { return spec_; }
  /// The policy of a compressible unit, from spec().
  const quant::LayerPolicy& policy(const std::string& unit) const;
  /// Replaces every layer's policy (the same layers, other policies): one
  /// extracted, BN-folded subnet then yields graphs of several policies.
  void set_policies(const std::map<std::string, quant::LayerPolicy>& policy);
  void fold_bn();
  bool bn_folded() const { return bn_folded_; }

 private:
  SubnetSpec spec_;
  std::vector<ConvUnit> units_;
  std::map<std::string, size_t> unit_index_;
  std::vector<SubnetOp> ops_;
  std::vector<LayerInfo> layers_;
  bool bn_folded_ = false;
};
using Subnet = std::shared_ptr<SubnetImpl>;

/// Builds a subnet op by op; each call returns the value it writes. A
/// family's build() drives it; with `shapes_only` it records the units'
/// descriptions without computing or copying their weights, which is how
/// layer_infos() of a spec costs shapes alone and always equals the
/// extracted subnet's.
class SubnetBuilder {
 public:
  explicit SubnetBuilder(SubnetSpec spec, bool shapes_only = false)
      : spec_(std::move(spec)), shapes_only_(shapes_only) {}

  const SubnetSpec& spec() const { return spec_; }
  int input() const { return 0; }
  /// A unit described by `desc` on value x, filled with (copies of) what
  /// `weights` returns (not called when shapes_only).
  int unit(const UnitDesc& desc, const std::function<UnitWeights()>& weights, int x);
  int add(int a, int b, const std::string& name);
  int gate(int x, int gate, const std::string& name);
  int mean(int x, const std::string& name);
  int act(int x, Act act, const std::string& name);
  int dropout(int x, double p);
  int tokens(int x, const std::string& name);
  /// Prepends `class_token` (C; undefined for none), then adds `positions` (T x C).
  int embed(int x, const at::Tensor& positions, const at::Tensor& class_token, const std::string& name);
  int layer_norm(int x, const at::Tensor& gamma, const at::Tensor& beta, const std::string& name);
  int attention(int qkv, int64_t heads, int64_t head_dim, int64_t tokens, const std::string& name);
  int token_mean(int x, const std::string& name);
  int class_token(int x, const std::string& name);
  /// The subnet whose output is the last value written, in eval mode.
  Subnet finish();
  /// The layers' shapes and costs so far (units and fp32 transformer parts),
  /// in network order, each unit with its policy from the spec.
  std::vector<LayerInfo> layer_infos() const;

 private:
  int push(SubnetOp op);
  /// A copy of `t` for the subnet to own; undefined when shapes_only.
  at::Tensor own(const at::Tensor& t) const;

  SubnetSpec spec_;
  bool shapes_only_;
  std::vector<LayerInfo> layers_;  // policies unset
  std::vector<ConvUnit> units_;
  std::vector<SubnetOp> ops_;
};

}  // namespace qnas::supernet
