#include "src/deploy/sensitivity.hpp"

#include <ATen/ATen.h>

#include <map>

#include "src/core/error.hpp"
#include "src/deploy/simulate.hpp"

namespace qnas::deploy {

namespace {

// A layer's nodes in one graph: the conv/linear, and the node whose output is
// the layer's activated output (itself, or the activation an int8 kernel
// could not fuse).
struct LayerNodes {
  size_t weight = 0, output = 0;
};

std::map<std::string, LayerNodes> layer_nodes(const Graph& g) {
  std::map<std::string, LayerNodes> nodes;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const auto& n = g.nodes[k];
    if (n.has_weight()) nodes[n.name] = {k, k};
  }
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const auto& n = g.nodes[k];
    const auto dot = n.name.rfind(".act");
    if (n.kind != OpKind::kAct || dot == std::string::npos || dot + 4 != n.name.size()) continue;
    const auto it = nodes.find(n.name.substr(0, dot));
    if (it != nodes.end() && n.inputs[0] == g.nodes[it->second.weight].output) it->second.output = k;
  }
  return nodes;
}

struct LayerPair {
  std::string layer;
  LayerNodes ref, q;
};

std::vector<LayerPair> quantized_layers(const Graph& reference, const Graph& quantized) {
  const auto ref = layer_nodes(reference), q = layer_nodes(quantized);
  std::vector<LayerPair> pairs;  // in network order
  for (const auto& n : quantized.nodes) {
    if (!n.has_weight() || (!n.policy.quantizes_weights() && !n.policy.quantizes_acts())) continue;
    const auto& layer = n.name;
    const auto it = ref.find(layer);
    QNAS_CHECK(it != ref.end(), "sensitivity: layer '", layer,
               "' of the quantized graph is not in the reference graph; expected two graphs of one subnet");
    pairs.push_back({layer, it->second, q.at(layer)});
  }
  return pairs;
}

void accumulate(quant::SignalNoise& s, const at::Tensor& reference, const at::Tensor& x) {
  s.add(reference.square().sum(at::kDouble).item<double>(), (x - reference).square().sum(at::kDouble).item<double>(),
        reference.numel());
}

// Every value of `g` the pairs read, for one batch (others are not kept).
std::vector<at::Tensor> values_of(const Graph& g, const at::Tensor& batch, const std::vector<bool>& keep) {
  std::vector<at::Tensor> vals(g.values.size());
  visit_values(g, batch, batch.size(0), [&](int v, const at::Tensor& t) {
    if (keep[size_t(v)]) vals[size_t(v)] = t;
  });
  return vals;
}

std::vector<bool> read_values(const Graph& g, const std::vector<LayerPair>& pairs, bool reference) {
  std::vector<bool> keep(g.values.size(), false);
  for (const auto& p : pairs) {
    const auto& nodes = reference ? p.ref : p.q;
    keep[size_t(g.nodes[nodes.weight].inputs[0])] = true;
    keep[size_t(g.nodes[nodes.output].output)] = true;
  }
  return keep;
}

// The quantized layer alone: its weights and grids on the reference input.
at::Tensor run_alone(const Graph& q, const LayerNodes& nodes, const at::Tensor& reference_input) {
  const auto& n = q.nodes[nodes.weight];
  auto y = as_simulated(q, n, run_fp32_node(n, {as_held(q.values[size_t(n.inputs[0])], reference_input)}));
  if (nodes.output != nodes.weight) {
    const auto& act = q.nodes[nodes.output];
    y = as_simulated(q, act, run_fp32_node(act, {y}));
  }
  return y;
}

struct Sums {
  quant::SignalNoise input, output, local;
  double loss_change = 0;  // sum over images of (g . delta)^2
};

// The reference graph on one batch, and at every kept value g, the gradient
// of the cross-entropy of the logits against their own argmax: the loss the
// fp32 network has on the labels it predicts (no labels needed).
struct ReferencePass {
  std::vector<at::Tensor> values, grads;
};

ReferencePass reference_pass(const Graph& g, const at::Tensor& batch, const std::vector<bool>& keep) {
  at::AutoGradMode grad_mode(true);
  std::vector<at::Tensor> vals(g.values.size());
  vals[size_t(g.input)] = batch.contiguous(at::MemoryFormat::ChannelsLast).detach().requires_grad_(true);
  std::vector<at::Tensor> in;
  for (const auto& n : g.nodes) {
    in.clear();
    for (int i : n.inputs) in.push_back(vals[size_t(i)]);
    auto y = as_simulated(g, n, run_fp32_node(n, in));
    if (keep[size_t(n.output)]) y.retain_grad();
    vals[size_t(n.output)] = y;
  }
  const auto& logits = vals[size_t(g.output)];
  // d CE / d logits = softmax - one_hot(argmax); backpropagated from there.
  const auto z = logits.detach();
  const auto dlogits = at::softmax(z, 1).scatter_add_(1, z.argmax(1, true), at::full({z.size(0), 1}, -1.0, z.options()));
  logits.backward(dlogits);
  ReferencePass r;
  r.values.resize(vals.size());
  r.grads.resize(vals.size());
  for (size_t i = 0; i < vals.size(); ++i)
    if (keep[i]) {
      r.values[i] = vals[i].detach();
      r.grads[i] = vals[i].grad();
    }
  return r;
}

// Sum over images of (g . delta)^2: the first-order change delta makes to each image's loss, squared.
double squared_loss_change(const at::Tensor& grad, const at::Tensor& delta) {
  return (grad * delta).reshape({delta.size(0), -1}).sum(1).square().sum(at::kDouble).item<double>();
}

}  // namespace

std::vector<quant::LayerSensitivity> measure_sensitivity(const Graph& reference, const Graph& quantized,
                                                         const at::Tensor& images, int64_t batch_size) {
  QNAS_CHECK(images.size(0) > 0, "sensitivity: needs calibration images; got none");
  const auto pairs = quantized_layers(reference, quantized);
  const auto keep_ref = read_values(reference, pairs, true), keep_q = read_values(quantized, pairs, false);
  std::vector<Sums> sums(pairs.size());
  c10::InferenceMode autograd_allowed(false);  // the reference pass backpropagates
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const auto batch = images.narrow(0, start, std::min(batch_size, images.size(0) - start));
    const auto ref = reference_pass(reference, batch, keep_ref);
    const auto q = values_of(quantized, batch, keep_q);
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < pairs.size(); ++i) {
      const auto& p = pairs[i];
      const auto ref_in_id = size_t(reference.nodes[p.ref.weight].inputs[0]);
      const auto ref_out_id = size_t(reference.nodes[p.ref.output].output);
      const auto& ref_in = ref.values[ref_in_id];
      const auto& ref_out = ref.values[ref_out_id];
      accumulate(sums[i].input, ref_in, q[size_t(quantized.nodes[p.q.weight].inputs[0])]);
      accumulate(sums[i].output, ref_out, q[size_t(quantized.nodes[p.q.output].output)]);
      const auto alone = run_alone(quantized, p.q, ref_in);
      accumulate(sums[i].local, ref_out, alone);
      sums[i].loss_change += squared_loss_change(ref.grads[ref_out_id], alone - ref_out);
    }
  }
  std::vector<quant::LayerSensitivity> out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    const auto& qn = quantized.nodes[p.q.weight];
    quant::SignalNoise weight;
    accumulate(weight, reference.nodes[p.ref.weight].weight, qn.weight);
    quant::LayerSensitivity s;
    s.layer = p.layer;
    s.weight_bits = qn.policy.weight_bits;
    s.act_bits = qn.policy.act_bits;
    s.weight_sqnr_db = weight.sqnr_db();
    s.weight_mse = weight.mse();
    s.input_sqnr_db = sums[i].input.sqnr_db();
    s.output_sqnr_db = sums[i].output.sqnr_db();
    s.sqnr_drop_db = s.input_sqnr_db - s.output_sqnr_db;
    s.output_mse = sums[i].output.mse();
    s.local_sqnr_db = sums[i].local.sqnr_db();
    s.score = sums[i].loss_change / double(images.size(0));
    out.push_back(s);
  }
  return out;
}

}  // namespace qnas::deploy
