#pragma once
// Elastic pieces every family's supernet shares: BN parameters at their
// largest size sliced to a subnet's leading channels, centre crops of
// kernels, and the initialisation rules (Once-for-All's).

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "supernet/ops.hpp"
#include "supernet/subnet.hpp"

namespace qnas::supernet {

/// BN parameters at their largest size; a subnet uses the leading channels.
struct ElasticBN {
  at::Tensor gamma, beta, running_mean, running_var;
};

/// Registers `prefix`_gamma/_beta (parameters) and _running_mean/_var (buffers) on m.
ElasticBN register_bn(torch::nn::Module& m, const std::string& prefix, int64_t channels);

/// The leading n entries along the first axis (output channels).
inline at::Tensor lead(const at::Tensor& t, int64_t n) { return t.narrow(0, 0, n); }
/// The leading `out` output and `in` input channels of a weight.
inline at::Tensor lead(const at::Tensor& w, int64_t out, int64_t in) { return w.narrow(0, 0, out).narrow(1, 0, in); }

/// The centre k x k of a kernel's last two axes.
at::Tensor centre_crop(const at::Tensor& w, int64_t k);

/// BN of the leading c channels then activation a. Training: fused, batch
/// statistics (supernet/bn_act.hpp); evaluation: the running statistics.
at::Tensor elastic_bn_act(const at::Tensor& x, const ElasticBN& p, int64_t c, Act a, bool training);

/// A unit's weights: w with the leading c channels of BN p.
UnitWeights bn_unit_weights(const at::Tensor& w, const ElasticBN& p, int64_t c);
/// Dropout with probability p while training (none when p is 0), the identity otherwise.
at::Tensor classifier_dropout(const at::Tensor& x, double p, bool training);

/// A unit without BN (linear layers): weight and bias.
inline UnitWeights biased_unit_weights(const at::Tensor& w, const at::Tensor& b) { return {w, b, {}, {}, {}, {}}; }

/// OFA's "he_fout" for a conv weight: normal(0, sqrt(2 / (k*k*out_channels))).
void init_conv(at::Tensor& w);
/// A linear layer: uniform(+-1/sqrt(in)) weights, zero bias.
void init_linear(at::Tensor& w, at::Tensor& b);

/// v in ascending order.
std::vector<int> sorted(std::vector<int> v);
/// The largest (smallest) entry of a non-empty list of choices.
int max_of(const std::vector<int>& choices);
int min_of(const std::vector<int>& choices);

/// "s<stage>.b<block>": every family's block names (deploy::block_of reads them).
std::string block_name(size_t stage, size_t block);

/// The depth of stage s in `spec` (variable "s<s>.depth").
int stage_depth(const SubnetSpec& spec, size_t stage);
/// The `field` choice ("s<s>.b<j>.<field>") of each active block of the stage, in order.
std::vector<int> block_choices(const SubnetSpec& spec, size_t stage, const std::string& field);

/// When block `block` of a stage exists: always when every choice of the
/// stage's depth variable keeps it, else when that depth is at least block + 1.
struct Activity {
  std::string var;  // empty: always
  int min = 0;
};
Activity block_activity(const std::string& depth_var, const std::vector<int>& depths, size_t block);

}  // namespace qnas::supernet
