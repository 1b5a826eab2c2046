#pragma once
// Vision Transformer supernet with AutoFormer-style weight entanglement
// (Chen et al. 2021) for small images.
//
//   patch embedding (conv, kernel = stride = patch, no padding) -> tokens
//   -> [class token] + learned positional embedding -> pre-LayerNorm blocks
//   -> final LayerNorm -> class token or mean over tokens -> classifier
//
// A block: x + proj(attention(qkv(LN1(x)))), then x + fc2(GELU(fc1(LN2(x)))).
//
// Elastic, every choice taking the leading part of the largest weights:
// - embedding dimension E (one for the whole net, `embed_dim`): the leading
//   E channels of every token, LayerNorm over those E;
// - depth (`s0.depth`: the first d blocks run);
// - heads per block (`s0.b<j>.heads`): q, k and v each keep their first h
//   heads of a fixed head_dim = max(embed_dim) / max(heads), so a head's
//   weights are the same rows in every subnet;
// - MLP ratio per block (`s0.b<j>.mlp_ratio`): fc1's first ratio * E rows.
// Compressible layers: stem (the patch embedding), each block's qkv, proj,
// fc1 and fc2, and the classifier.
//
// Not yet a family in supernet/families.cpp: the deployed graph and its
// consumers do not hold transformer ops yet (deploy::build_graph refuses
// them), so the conformance suite cannot run on it.

#include "supernet/elastic.hpp"
#include "supernet/supernet.hpp"

namespace qnas::supernet {

/// Typed architecture of one vit subnet.
struct ViTArch {
  int64_t embed = 0;
  std::vector<int> heads, mlp_ratio;  // per active block
};

/// One pre-LayerNorm transformer block at its largest size.
class ViTBlockImpl : public torch::nn::Module {
 public:
  ViTBlockImpl(int64_t embed_max, int64_t heads_max, int64_t head_dim, int64_t hidden_max);

  /// Block `name` on tokens x (N, T, embed), `heads` heads, MLP of `hidden` channels.
  at::Tensor forward(const at::Tensor& x, int64_t heads, int64_t hidden, const std::string& name,
                     const FakeQuant& fq = {}) const;
  /// The attention branch alone, without LayerNorm: proj(attention(qkv(x))).
  at::Tensor attend(const at::Tensor& x, int64_t heads, const std::string& name, const FakeQuant& fq = {}) const;
  /// Appends a standalone copy to `b` on value x holding `tokens` tokens; returns its output value.
  int extract(SubnetBuilder& b, int x, const std::string& name, int64_t embed, int64_t heads, int64_t hidden,
              int64_t tokens) const;

  /// qkv's weight and bias for the first `heads` heads and `embed` input channels.
  at::Tensor qkv_weight(int64_t heads, int64_t embed) const;
  at::Tensor qkv_bias(int64_t heads) const;
  const int64_t head_dim;

 private:
  at::Tensor ln1_w_, ln1_b_, qkv_w_, qkv_b_, proj_w_, proj_b_, ln2_w_, ln2_b_, fc1_w_, fc1_b_, fc2_w_, fc2_b_;
};
TORCH_MODULE(ViTBlock);

class ViTSupernetImpl : public SupernetImpl {
 public:
  /// Throws naming the key for a config the images or the heads cannot take.
  ViTSupernetImpl(const core::ViTConfig& cfg, const core::QuantConfig& quant, const InputShape& input);

  const SpaceDesc& space() const override { return space_; }
  /// The patch embedding, class token and positional embedding: tokens (N, T, E).
  at::Tensor stem(const at::Tensor& x, const SubnetSpec& spec) override;
  bool same_stem(const SubnetSpec& a, const SubnetSpec& b) const override;
  at::Tensor forward_from_stem(const at::Tensor& stem, const SubnetSpec& spec) override;
  void build(SubnetBuilder& b) const override;
  /// timm's rule for ViTs: no decay on LayerNorm, biases, the class token and
  /// the positional embedding.
  bool decays(const std::string& name) const override;

  /// Validates `spec` against the space and returns its typed architecture.
  ViTArch arch_of(const SubnetSpec& spec) const;
  const ViTBlock& block(size_t i) const { return blocks_.at(i); }
  int64_t head_dim() const { return head_dim_; }
  /// Tokens each block sees: patches, plus the class token when pooling by it.
  int64_t tokens() const;

 private:
  void build_space(const core::QuantConfig& quant);
  int64_t patches() const;
  UnitDesc stem_desc(int64_t embed) const;
  at::Tensor class_token(int64_t embed) const;

  core::ViTConfig cfg_;
  InputShape input_;
  int64_t head_dim_ = 0;
  SpaceDesc space_;
  at::Tensor patch_w_, patch_b_, cls_token_, pos_, ln_w_, ln_b_, cls_w_, cls_b_;
  std::vector<ViTBlock> blocks_;
};

/// Checks a vit config against the input it is built for: clear errors
/// naming the key (heads dividing the embedding, the patch dividing the
/// image, MLP ratios and pooling within their allowed sets).
void check_vit_config(const core::ViTConfig& cfg, const InputShape& input);

Supernet make_vit(const core::Config& cfg, const InputShape& input);
void tiny_vit(core::Config& cfg);

}  // namespace qnas::supernet
