#pragma once
// Once-for-All style MobileNetV3 supernet for small images.
//
//   stem 3x3 conv (stride 1) -> stages of inverted-residual blocks -> 1x1
//   head expansion -> global pool -> feature-mix linear -> classifier
//
// Elastic per block: depthwise kernel (config supernet.kernel) and expand
// ratio (supernet.expand); per stage: depth (supernet.depth, the first d
// blocks run). Design choices, after OFA (Cai et al. 2020) and BigNAS:
// - Kernel sharing: a smaller kernel is the centre crop of the next larger
//   one multiplied by a learned k^2 x k^2 transform matrix per layer and
//   transition (OFA's kernel transform, identity at init); with
//   supernet.kernel_transform: false, the plain centre crop.
// - Expand ratio: mid channels = make_divisible(in * ratio, 8), the leading
//   channels of the largest block (no importance sorting: the sandwich rule
//   trains the leading channels into the shared ones from the start).
// - SE (reduction 4, hard-sigmoid gate) and h-swish per stage, as in MBV3.
// - BN statistics are not tracked while training (every subnet has its own);
//   a subnet gets them by recalibration after extraction.
// - The last BN of each residual block starts at gamma = 0 (BigNAS).

#include <map>

#include "supernet/elastic.hpp"
#include "supernet/supernet.hpp"

namespace qnas::supernet {

/// Typed architecture of one mbv3 subnet.
struct MBV3Arch {
  std::vector<int> depth;                        // per stage
  std::vector<std::vector<int>> kernel, expand;  // per stage, per active block
};

/// One inverted-residual block at its largest size.
class ElasticBlockImpl : public torch::nn::Module {
 public:
  ElasticBlockImpl(int64_t in, int64_t out, int64_t stride, bool se, Act act,
                   const std::vector<int>& kernels, const std::vector<int>& expands, bool kernel_transform);

  /// Block `name` at (kernel, expand); `fq` simulates its units' policies.
  at::Tensor forward(const at::Tensor& x, int kernel, int expand, const std::string& name = "",
                     const FakeQuant& fq = {}) const;
  /// Appends a standalone copy for (kernel, expand), named `name`, to `b` on
  /// value x running at h x w; returns its output value, h and w set to its output size.
  int extract(SubnetBuilder& b, int x, const std::string& name, int kernel, int expand, int64_t& h,
              int64_t& w) const;
  /// Its units' descriptions in network order: pw1, dw, [se_reduce, se_expand], pw2.
  std::vector<UnitDesc> unit_descs(const std::string& name, int kernel, int expand, int64_t in_h, int64_t in_w) const;

  int64_t mid_channels(int expand) const;
  /// The depthwise kernel of size k for the leading `mid` channels.
  at::Tensor dw_kernel(int64_t mid, int k) const;
  /// Zero-inits the last BN's gamma (residual blocks, BigNAS).
  void zero_last_bn();

  const int64_t in, out, stride;
  const bool se, residual;
  const Act act;

 private:
  at::Tensor bn_act(const at::Tensor& x, const ElasticBN& p, int64_t channels, Act a) const;

  std::vector<int> kernels_;  // ascending
  int64_t mid_max_, se_max_;
  bool kernel_transform_;
  at::Tensor pw1_w_, dw_w_, pw2_w_;
  ElasticBN pw1_bn_, dw_bn_, pw2_bn_;
  at::Tensor se_rw_, se_rb_, se_ew_, se_eb_;
  std::map<int, at::Tensor> transform_;  // target kernel -> (k^2 x k^2) from the next larger
};
TORCH_MODULE(ElasticBlock);

class MBV3SupernetImpl : public SupernetImpl {
 public:
  MBV3SupernetImpl(const core::MBV3Config& cfg, const core::QuantConfig& quant, const InputShape& input);

  const SpaceDesc& space() const override { return space_; }
  at::Tensor stem(const at::Tensor& x, const SubnetSpec& spec) override;
  at::Tensor forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) override;
  void build(SubnetBuilder& b) const override;

  /// Validates `spec` against the space and returns its typed architecture.
  MBV3Arch arch_of(const SubnetSpec& spec) const;

 private:
  void build_space(const core::QuantConfig& quant);
  UnitDesc stem_desc() const;
  /// head.expand, head.mix, classifier after the blocks, at h x w.
  std::vector<UnitDesc> head_descs(int64_t h, int64_t w) const;
  void init_weights();

  core::MBV3Config cfg_;
  InputShape input_;
  SpaceDesc space_;
  at::Tensor stem_w_;
  ElasticBN stem_bn_;
  std::vector<std::vector<ElasticBlock>> stages_;
  at::Tensor head_w_;
  ElasticBN head_bn_;
  at::Tensor mix_w_, mix_b_, cls_w_, cls_b_;
};

/// The family's entries in the family list.
Supernet make_mbv3(const core::Config& cfg, const InputShape& input);
void tiny_mbv3(core::Config& cfg);

}  // namespace qnas::supernet
