#pragma once
// Once-for-All style ResNet (bottleneck blocks) supernet for small images.
//
//   stem 3x3 conv (stride supernet.stem_stride) -> stages of bottleneck
//   blocks -> global pool -> classifier
//
// A bottleneck block: 1x1 conv (reduce to `mid`) -> 3x3 conv (the stage's
// stride on the first block, as ResNet v1.5 and OFA) -> 1x1 conv (expand to
// the stage's width), each with BN, ReLU after the first two; the shortcut
// is the identity, or on every stage's first block a 1x1 conv + BN with the
// stage's stride (`.down`); ReLU after the residual add.
//
// Elastic (Cai et al. 2020, OFA's ResNet50 space):
// - depth per stage (supernet.depth: the first d blocks run);
// - width per stage, or one for the whole net (supernet.width_pct,
//   supernet.width_scope): a stage's channels = make_divisible(width *
//   pct / 100, 8), the leading channels of the largest;
// - bottleneck width per block (supernet.expand_pct): mid =
//   make_divisible(channels * pct / 100, 8) of the block's active width.
// Percentages, not ratios, so every choice is an integer in specs as in the
// config. The stem's width is fixed. BN statistics are not tracked while
// training; the last BN of every block starts at gamma = 0 (Goyal et al.,
// as BigNAS and OFA).

#include "supernet/elastic.hpp"
#include "supernet/supernet.hpp"

namespace qnas::supernet {

/// Typed architecture of one resnet subnet.
struct ResNetArch {
  std::vector<int> depth, width_pct;      // per stage
  std::vector<std::vector<int>> expand_pct;  // per stage, per active block
};

/// Active channel counts of one block.
struct BottleneckWidths {
  int64_t in = 0, mid = 0, out = 0;
};

/// One bottleneck block at its largest size.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t in_max, int64_t mid_max, int64_t out_max, int64_t stride, bool downsample);

  /// Block `name` at widths `c`; `fq` simulates its units' policies.
  at::Tensor forward(const at::Tensor& x, const BottleneckWidths& c, const std::string& name,
                     const FakeQuant& fq = {}) const;
  /// Appends a standalone copy at widths `c`, named `name`, to `b` on value x
  /// running at h x w; returns its output value, h and w set to its output size.
  int extract(SubnetBuilder& b, int x, const std::string& name, const BottleneckWidths& c, int64_t& h,
              int64_t& w) const;
  /// Its units' descriptions in network order: conv1, conv2, conv3, [down].
  std::vector<UnitDesc> unit_descs(const std::string& name, const BottleneckWidths& c, int64_t in_h,
                                   int64_t in_w) const;
  /// Zero-inits the last BN's gamma: the block starts as its shortcut.
  void zero_last_bn();

  const int64_t stride;
  const bool downsample;

 private:
  at::Tensor bn_act(const at::Tensor& x, const ElasticBN& p, int64_t channels, Act a) const;

  at::Tensor conv1_w_, conv2_w_, conv3_w_, down_w_;
  ElasticBN bn1_, bn2_, bn3_, down_bn_;
};
TORCH_MODULE(Bottleneck);

class ResNetSupernetImpl : public SupernetImpl {
 public:
  ResNetSupernetImpl(const core::ResNetConfig& cfg, const core::QuantConfig& quant, const InputShape& input);

  const SpaceDesc& space() const override { return space_; }
  at::Tensor stem(const at::Tensor& x, const SubnetSpec& spec) override;
  at::Tensor forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) override;
  void build(SubnetBuilder& b) const override;

  /// Validates `spec` against the space and returns its typed architecture.
  ResNetArch arch_of(const SubnetSpec& spec) const;
  /// Channels of stage s at width `pct`.
  int64_t stage_channels(size_t s, int pct) const;

 private:
  void build_space(const core::QuantConfig& quant);
  std::string width_var(size_t stage) const;
  /// Widths of block b of stage s whose input has `in` channels.
  BottleneckWidths widths(const ResNetArch& a, size_t s, size_t b, int64_t in) const;
  UnitDesc stem_desc() const;
  UnitDesc classifier_desc(int64_t in) const;

  core::ResNetConfig cfg_;
  InputShape input_;
  SpaceDesc space_;
  at::Tensor stem_w_;
  ElasticBN stem_bn_;
  std::vector<std::vector<Bottleneck>> stages_;
  at::Tensor cls_w_, cls_b_;
};

/// The family's entries in the family list.
Supernet make_resnet(const core::Config& cfg, const InputShape& input);
void tiny_resnet(core::Config& cfg);

}  // namespace qnas::supernet
