#include "supernet/elastic.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "supernet/bn_act.hpp"

namespace qnas::supernet {

ElasticBN register_bn(torch::nn::Module& m, const std::string& prefix, int64_t channels) {
  return {m.register_parameter(prefix + "_gamma", at::ones({channels})),
          m.register_parameter(prefix + "_beta", at::zeros({channels})),
          m.register_buffer(prefix + "_running_mean", at::zeros({channels})),
          m.register_buffer(prefix + "_running_var", at::ones({channels}))};
}

at::Tensor centre_crop(const at::Tensor& w, int64_t k) {
  const int64_t start = (w.size(-1) - k) / 2;
  return w.narrow(-2, start, k).narrow(-1, start, k);
}

at::Tensor elastic_bn_act(const at::Tensor& x, const ElasticBN& p, int64_t c, Act a, bool training) {
  if (training) return batch_norm_act(x, lead(p.gamma, c), lead(p.beta, c), a);
  return apply_act(batch_norm(x, lead(p.gamma, c), lead(p.beta, c), lead(p.running_mean, c),
                              lead(p.running_var, c), false), a);
}

UnitWeights bn_unit_weights(const at::Tensor& w, const ElasticBN& p, int64_t c) {
  return {w, {}, lead(p.gamma, c), lead(p.beta, c), lead(p.running_mean, c), lead(p.running_var, c)};
}

void init_conv(at::Tensor& w) {
  const double n = double(w.size(0) * w.size(2) * w.size(3));
  w.normal_(0.0, std::sqrt(2.0 / n));
}

void init_linear(at::Tensor& w, at::Tensor& b) {
  const double bound = 1.0 / std::sqrt(double(w.size(1)));
  w.uniform_(-bound, bound);
  b.zero_();
}

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace qnas::supernet
