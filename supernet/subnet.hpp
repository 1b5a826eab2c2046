#pragma once
// A standalone subnet extracted from a supernet: plain convolution / linear
// units holding copies of the sliced weights, with the per-layer policy
// applied as fake quantization.
//
// Life cycle used by the evaluator:
//   extract -> BN recalibration (fp32, train-mode statistics) -> fold_bn()
//   -> quantize_weights() -> activation calibration (observe, then
//   finish_calibration()) -> inference.
// Weights are quantized after BN folding, as the deployed int8 form will hold
// them.

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "src/quant/fake_quant.hpp"
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
  Act act = Act::kNone;
  int64_t in_h = 1, in_w = 1;

  int64_t groups() const { return kind == "dwconv" ? in_channels : 1; }
  int64_t out_h() const { return (in_h + 2 * (kernel / 2) - kernel) / stride + 1; }
  int64_t out_w() const { return (in_w + 2 * (kernel / 2) - kernel) / stride + 1; }
};

/// Tensors that fill a unit (copied in). gamma/beta/mean/var only when the
/// unit has BN; bias only when it has none.
struct UnitWeights {
  at::Tensor weight, bias, gamma, beta, running_mean, running_var;
};

/// One compressible layer: conv (or depthwise conv, or linear) -> BN -> act,
/// with fake quantization of its weight and of its input activation.
class ConvUnitImpl : public torch::nn::Module {
 public:
  explicit ConvUnitImpl(UnitDesc desc);

  at::Tensor forward(const at::Tensor& x);

  void load(const UnitWeights& w);
  /// Folds BN into weight and bias (exact in fp32). Call before quantizing.
  void fold_bn();
  /// Applies the policy: caches the fake-quantized weight; activation
  /// quantization starts after calibration.
  void set_policy(const quant::LayerPolicy& policy);
  void set_observing(bool on) { observing_ = on; }
  /// Turns the observed input range into activation quantization parameters.
  void finish_calibration();

  const UnitDesc& desc() const { return desc_; }
  const quant::LayerPolicy& policy() const { return policy_; }
  const quant::ActQParams& input_qparams() const { return in_q_; }
  LayerInfo info() const;

  at::Tensor weight, bias;
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  UnitDesc desc_;
  quant::LayerPolicy policy_;
  at::Tensor qweight_;  // fake-quantized weight, when weight_bits < 32
  quant::ActQParams in_q_;
  quant::MinMaxObserver observer_;
  bool observing_ = false;
};
TORCH_MODULE(ConvUnit);

/// Squeeze-and-excitation weights of a block (fp32, not compressible).
struct SEWeights {
  at::Tensor reduce_weight, reduce_bias, expand_weight, expand_bias;
};

/// Inverted residual block: pw1 (1x1 expand) -> dw (kxk) -> [SE] -> pw2 (1x1 project) [+ x].
class MBBlockImpl : public torch::nn::Module {
 public:
  MBBlockImpl(ConvUnit pw1, ConvUnit dw, ConvUnit pw2, bool residual);
  at::Tensor forward(const at::Tensor& x);
  void set_se(const SEWeights& se);
  bool has_se() const { return se_reduce_weight.defined(); }
  std::vector<LayerInfo> se_infos() const;

  ConvUnit pw1, dw, pw2;
  at::Tensor se_reduce_weight, se_reduce_bias, se_expand_weight, se_expand_bias;
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
  void fold_bn();
  /// Quantizes every unit's weight by its policy in spec(); call after fold_bn().
  void quantize_weights();
  /// Starts (true) or ends (false) observing inputs of units whose policy
  /// quantizes activations; ending computes their quantization parameters.
  void observe_activations(bool on);
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
