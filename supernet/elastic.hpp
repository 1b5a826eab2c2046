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

/// The centre k x k of a kernel's last two axes.
at::Tensor centre_crop(const at::Tensor& w, int64_t k);

/// BN of the leading c channels then activation a. Training: fused, batch
/// statistics (supernet/bn_act.hpp); evaluation: the running statistics.
at::Tensor elastic_bn_act(const at::Tensor& x, const ElasticBN& p, int64_t c, Act a, bool training);

/// A unit's weights: w with the leading c channels of BN p.
UnitWeights bn_unit_weights(const at::Tensor& w, const ElasticBN& p, int64_t c);

/// OFA's "he_fout" for a conv weight: normal(0, sqrt(2 / (k*k*out_channels))).
void init_conv(at::Tensor& w);
/// A linear layer: uniform(+-1/sqrt(in)) weights, zero bias.
void init_linear(at::Tensor& w, at::Tensor& b);

/// v in ascending order.
std::vector<int> sorted(std::vector<int> v);

}  // namespace qnas::supernet
