#pragma once
// A standalone subnet extracted from a supernet: plain convolution / linear
// units holding copies of the sliced weights, in fp32. The spec's per-layer
// policy travels with it; src/deploy/ turns a BN-folded subnet into the
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
  int64_t in_h = 1, in_w = 1;

  int64_t groups() const { return kind == "dwconv" ? in_channels : 1; }
  int64_t out_h() const { return (in_h + 2 * (kernel / 2) - kernel) / stride + 1; }
  int64_t out_w() const { return (in_w + 2 * (kernel / 2) - kernel) / stride + 1; }
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

/// Inverted residual block: pw1 (1x1 expand) -> dw (kxk) -> [SE] -> pw2 (1x1 project) [+ x].
/// SE: y * se_expand(se_reduce(mean_hw(y))), se_reduce with ReLU, se_expand
/// with hard sigmoid, both linear units on the pooled vector.
class MBBlockImpl : public torch::nn::Module {
 public:
  MBBlockImpl(ConvUnit pw1, ConvUnit dw, ConvUnit pw2, bool residual);
  at::Tensor forward(const at::Tensor& x);
  void set_se(ConvUnit reduce, ConvUnit expand);
  bool has_se() const { return !se_reduce.is_empty(); }
  /// Compressible units in network order (pw1, dw, [se_reduce, se_expand], pw2).
  std::vector<ConvUnit> units() const;

  ConvUnit pw1, dw, pw2;
  ConvUnit se_reduce{nullptr}, se_expand{nullptr};
  bool residual;
};
TORCH_MODULE(MBBlock);

/// Interface of every extracted subnet (mbv3 now; resnet and vit later).
class SubnetImpl : public torch::nn::Module {
 public:
  virtual ~SubnetImpl() = default;
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  /// Compressible units in network order.
  virtual std::vector<ConvUnit> units() const = 0;
  /// Every layer (compressible or not) in network order, for metrics.
  virtual std::vector<LayerInfo> layer_infos() const = 0;

  const SubnetSpec& spec() const { return spec_; }
  /// The policy of a compressible unit, from spec().
  const quant::LayerPolicy& policy(const std::string& unit) const;
  /// Replaces every layer's policy (the same layers, other policies): one
  /// extracted, BN-folded subnet then yields graphs of several policies.
  void set_policies(const std::map<std::string, quant::LayerPolicy>& policy);
  void fold_bn();
  bool bn_folded() const { return bn_folded_; }

 protected:
  SubnetSpec spec_;
  bool bn_folded_ = false;
};
using Subnet = std::shared_ptr<SubnetImpl>;

/// The MobileNetV3-style subnet.
class MBV3SubnetImpl : public SubnetImpl {
 public:
  MBV3SubnetImpl(SubnetSpec spec, ConvUnit stem, std::vector<MBBlock> blocks, ConvUnit head_expand,
                 ConvUnit mix, ConvUnit classifier, double dropout);
  at::Tensor forward(const at::Tensor& x) override;
  std::vector<ConvUnit> units() const override;
  std::vector<LayerInfo> layer_infos() const override;

  ConvUnit stem, head_expand, mix, classifier;
  std::vector<MBBlock> blocks;
  double dropout;
};

}  // namespace qnas::supernet
