#include "src/deploy/factorize.hpp"

#include <ATen/ATen.h>

#include "src/core/error.hpp"
#include "src/deploy/simulate.hpp"
#include "src/quant/admm_cp.hpp"

namespace qnas::deploy {

namespace {

using Eigen::MatrixXd;
using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

MatrixXd to_eigen(const at::Tensor& m) {
  const at::Tensor c = m.to(at::kDouble).contiguous();
  return Eigen::Map<const RowMajor>(c.data_ptr<double>(), c.size(0), c.size(1));
}

at::Tensor to_tensor(const MatrixXd& m) {
  const RowMajor r = m;
  return at::from_blob(const_cast<double*>(r.data()), {r.rows(), r.cols()}, at::kDouble).clone();
}

// W [Cout, Cin, kh, kw] (or [Cout, Cin]) as its mode-1 unfolding: column j + Cin*k.
quant::Tensor3 as_tensor3(const at::Tensor& w) {
  quant::Tensor3 x;
  x.i = w.size(0);
  x.j = w.size(1);
  x.k = w.numel() / (x.i * x.j);
  x.x1 = to_eigen(w.reshape({x.i, x.j, x.k}).permute({0, 2, 1}).reshape({x.i, x.k * x.j}));
  return x;
}

// A part of the layer: its kind, policy and bits, no bias (zeros), no activation.
Node part_of(const Node& layer, const std::string& suffix, int64_t out_channels) {
  Node n;
  n.kind = layer.kind;
  n.name = suffix.empty() ? layer.name : layer.name + "." + suffix;
  n.int8 = layer.int8;
  n.weight_bits = layer.weight_bits;
  n.policy = layer.policy;
  n.bias = at::zeros({out_channels}, at::kFloat);
  return n;
}

// A factor on its grid (values = codes * step) as a node's weight, each row
// r times gain_r: codes times sign(gain_r), scale step * |gain_r| (a zero
// gain zeroes the row), so the node stays on a symmetric per-channel grid.
void set_factor(Node& n, const MatrixXd& rows, double step, const at::Tensor& gain, at::IntArrayRef shape) {
  if (!(step > 0)) step = 1;  // an all-zero factor
  const at::Tensor dead = gain.eq(0);
  quant::QuantizedWeight q;
  q.codes = at::round(to_tensor(rows) / step) * at::sign(gain).unsqueeze(1);
  q.grid.bits = n.weight_bits;
  q.grid.group_size = q.codes.size(1);
  q.grid.scale = (at::where(dead, at::ones_like(gain), gain.abs()) * step).unsqueeze(1).contiguous();
  q.grid.zero = at::zeros_like(q.grid.scale);
  set_quantized_weight(n, q, shape);
}

quant::CpResult run_cp(const Node& layer, const quant::Tensor3& x, int64_t rank) {
  quant::CpSettings s;
  s.bits = layer.weight_bits;
  if (layer.policy.method == "admm_cp") return quant::admm_cp(x, rank, s);
  return quant::round_factors(x, quant::cp_als(x, rank, s), layer.weight_bits);
}

}  // namespace

bool factorizable(const Node& n) {
  return n.has_weight() && n.policy.factorizes_layer(n.kind != OpKind::kLinear && n.groups != 1);
}

FactorizedLayer factorize(const Node& layer, const at::Tensor& w) {
  QNAS_CHECK(factorizable(layer), "factorize: layer '", layer.name, "' (", layer.policy.method,
             ") is not a dense conv or linear with a factorizing policy");
  const auto x = as_tensor3(w);
  FactorizedLayer f;
  f.rank = quant::cp_rank_of(layer.policy, x.i, x.j, x.k);
  const auto cp = run_cp(layer, x, f.rank);
  f.relative_error = cp.relative_error;
  const auto& [a, b, c] = cp.factors;
  const int64_t r = f.rank;
  const bool conv = layer.kind == OpKind::kConv;
  const auto one_by_one = [&](int64_t out, int64_t in) {
    return conv ? std::vector<int64_t>{out, in, 1, 1} : std::vector<int64_t>{out, in};
  };
  const at::Tensor ones = at::ones({r}, at::kDouble);
  Node in = part_of(layer, "cp_in", r);
  in.stride = x.k == 1 ? layer.stride : 1;  // a strided 1x1 conv: the stride goes first
  // K = 1: C's single row folds into the first node's rows.
  set_factor(in, b.transpose(), cp.grid_b.step, x.k == 1 ? to_tensor(c).squeeze(0) : ones, one_by_one(r, x.j));
  f.parts.push_back(std::move(in));
  if (x.k > 1) {
    Node dw = part_of(layer, "cp_dw", r);
    dw.stride = layer.stride;
    dw.padding = layer.padding;
    dw.groups = r;
    set_factor(dw, c.transpose(), cp.grid_c.step, ones, {r, 1, w.size(2), w.size(3)});
    f.parts.push_back(std::move(dw));
  }
  Node out = part_of(layer, "", x.i);
  out.bias = layer.bias;
  out.act = layer.act;
  set_factor(out, a, cp.grid_a.step, at::ones({x.i}, at::kDouble), one_by_one(x.i, r));
  f.parts.push_back(std::move(out));
  // The mode-1 unfolding back to the weight's shape: column j + Cin*k.
  f.weight = to_tensor(cp.factors.reconstruct()).reshape({x.i, x.k, x.j}).permute({0, 2, 1}).reshape(w.sizes())
                 .to(at::kFloat).contiguous();
  return f;
}

namespace {

// Per output channel: mean and standard deviation of `node`'s pre-activation
// output over `images` (weights quantized, activations fp32).
std::pair<at::Tensor, at::Tensor> output_moments(const Graph& g, size_t node, const at::Tensor& images,
                                                 int64_t batch_size) {
  Node linear = g.nodes[node];
  linear.act = supernet::Act::kNone;
  at::Tensor sum, sum_sq;
  int64_t count = 0;
  visit_inputs(g, node, images, batch_size, [&](const std::vector<at::Tensor>& in) {
    const at::Tensor y = run_fp32_node(linear, in).to(at::kDouble);
    const std::vector<int64_t> dims = y.dim() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
    sum = sum.defined() ? sum + y.sum(dims) : y.sum(dims);
    sum_sq = sum_sq.defined() ? sum_sq + y.square().sum(dims) : y.square().sum(dims);
    count += y.numel() / y.size(1);
  });
  const at::Tensor mean = sum / double(count);
  return {mean, (sum_sq / double(count) - mean.square()).clamp_min(0).sqrt()};
}

// y -> scale * y + shift per output channel: the scales through
// scale_output_channels(), the bias set from its fp32 value in one rounding.
void apply_channel_affine(Node& n, const at::Tensor& scale, const at::Tensor& shift) {
  const at::Tensor bias = (scale * n.bias.to(at::kDouble) + shift).to(at::kFloat).contiguous();
  scale_output_channels(n, scale);
  n.bias = bias;
}

}  // namespace

void recalibrate_factorized_bn(Graph& g, const std::map<std::string, BnAffine>& bn, const at::Tensor& images,
                               int64_t batch_size) {
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& n = g.nodes[k];
    const auto it = bn.find(n.name);
    if (!n.has_weight() || it == bn.end()) continue;
    const auto [mean, stdev] = output_moments(g, k, images, batch_size);
    const at::Tensor gamma = it->second.gamma.to(at::kDouble).abs(), beta = it->second.beta.to(at::kDouble);
    // A channel without spread (gamma 0, or a dead factor) keeps its scale; its mean still moves.
    const at::Tensor scale = at::where(stdev > 1e-12, gamma / stdev.clamp_min(1e-12), at::ones_like(stdev));
    apply_channel_affine(n, scale, beta - scale * mean);
  }
}

void replace_with_parts(Graph& g, size_t node, std::vector<Node> parts) {
  QNAS_CHECK(node < g.nodes.size() && !parts.empty(), "factorize: no node ", node, " or no parts to replace it");
  const Node& old = g.nodes[node];
  int x = old.inputs.at(0);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    Value v;
    v.name = parts[i].name;
    v.quantized = parts[i].int8;  // an int8 kernel writes quint8; else fp32
    g.values.push_back(v);
    parts[i].inputs = {x};
    parts[i].output = x = int(g.values.size()) - 1;
  }
  parts.back().inputs = {x};
  parts.back().output = old.output;
  g.nodes.erase(g.nodes.begin() + std::ptrdiff_t(node));
  g.nodes.insert(g.nodes.begin() + std::ptrdiff_t(node), parts.begin(), parts.end());
  g.calibrated = false;
}

}  // namespace qnas::deploy
