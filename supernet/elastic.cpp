#include "supernet/elastic.hpp"

#include <ATen/ATen.h>
#include <torch/nn/functional/dropout.h>

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

at::Tensor classifier_dropout(const at::Tensor& x, double p, bool training) {
  if (p <= 0) return x;
  return torch::nn::functional::dropout(x, torch::nn::functional::DropoutFuncOptions().p(p).training(training));
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

int max_of(const std::vector<int>& choices) { return *std::max_element(choices.begin(), choices.end()); }
int min_of(const std::vector<int>& choices) { return *std::min_element(choices.begin(), choices.end()); }

std::string block_name(size_t stage, size_t block) {
  return "s" + std::to_string(stage) + ".b" + std::to_string(block);
}

int stage_depth(const SubnetSpec& spec, size_t stage) { return spec.arch.at("s" + std::to_string(stage) + ".depth"); }

std::vector<int> block_choices(const SubnetSpec& spec, size_t stage, const std::string& field) {
  std::vector<int> out;
  for (int b = 0; b < stage_depth(spec, stage); ++b) out.push_back(spec.arch.at(block_name(stage, size_t(b)) + "." + field));
  return out;
}

Activity block_activity(const std::string& depth_var, const std::vector<int>& depths, size_t block) {
  if (int(block) < min_of(depths)) return {};
  return {depth_var, int(block) + 1};
}

}  // namespace qnas::supernet
