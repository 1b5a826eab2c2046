#include "src/deploy/simulate.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "src/core/error.hpp"
#include "src/quant/fake_quant.hpp"

namespace qnas::deploy {

at::Tensor run_fp32_node(const Node& n, const std::vector<at::Tensor>& in) {
  switch (n.kind) {
    case OpKind::kConv: {
      // Channels-last throughout: with one input channel the stem's input
      // layout is ambiguous and LibTorch would keep NCHW (2x slower here).
      const auto y = supernet::conv(in[0], n.weight, n.bias, n.stride, n.padding, n.groups);
      return supernet::apply_act(y.contiguous(at::MemoryFormat::ChannelsLast), n.act);
    }
    case OpKind::kLinear: {
      if (!n.dynamic) return supernet::apply_act(at::linear(in[0], n.weight, n.bias), n.act);
      const auto [lo, hi] = at::aminmax(in[0]);
      const auto q = quant::act_qparams_from_range(lo.item<double>(), hi.item<double>(), kDynamicInputBits);
      const auto x = quant::fake_quant_act(in[0], q);
      return supernet::apply_act(at::linear(x, n.weight, n.bias), n.act);
    }
    case OpKind::kAct: return supernet::apply_act(in[0], n.act);
    case OpKind::kAdd: return in[0] + in[1];
    case OpKind::kMul: return supernet::scale_channels(in[0], in[1]);
    case OpKind::kMean: return in[0].mean({2, 3});
    case OpKind::kQuantize:
    case OpKind::kDequantize: return in[0];
    case OpKind::kScale: return in[0] * n.channel_scale;
    case OpKind::kTokens: return supernet::to_tokens(in[0]);
    case OpKind::kEmbed: return supernet::embed_tokens(in[0], n.weight, n.bias);
    case OpKind::kLayerNorm: return supernet::layer_norm(in[0], n.weight, n.bias);
    case OpKind::kAttention: return supernet::attention(in[0], n.heads, n.head_dim);
    case OpKind::kTokenMean: return in[0].mean(1);
    case OpKind::kClassToken: return in[0].select(1, 0);
  }
  QNAS_THROW("deploy: node '", n.name, "' of unknown kind");
}

namespace {

quant::ActQParams act_qparams(const Value& v) { return {8, v.q.scale, v.q.zero_point}; }

// Runs the nodes before `stop` (all by default) and returns the inputs of
// node `stop` (the graph's output when all ran); `produced(node, tensor)`
// may replace what is stored.
template <class F>
std::vector<at::Tensor> run_until(const Graph& g, const at::Tensor& x, size_t stop, F produced) {
  std::vector<at::Tensor> vals(g.values.size());
  vals[size_t(g.input)] = x;
  std::vector<at::Tensor> in;
  const auto dead = g.dead_after();
  const auto inputs_of = [&](const Node& n) {
    in.clear();
    for (int i : n.inputs) in.push_back(vals[size_t(i)]);
  };
  for (size_t k = 0; k < std::min(stop, g.nodes.size()); ++k) {
    const auto& n = g.nodes[k];
    inputs_of(n);
    vals[size_t(n.output)] = produced(n, run_fp32_node(n, in));
    for (int v : dead[k]) vals[size_t(v)].reset();
  }
  if (stop >= g.nodes.size()) return {vals[size_t(g.output)]};
  inputs_of(g.nodes[stop]);
  return in;
}

template <class F>
at::Tensor run(const Graph& g, const at::Tensor& x, F produced) {
  return run_until(g, x, g.nodes.size(), produced).front();
}

// f(batch) for consecutive batches of `images`, channels-last, without autograd.
template <class F>
void for_each_batch(const at::Tensor& images, int64_t batch_size, F f) {
  c10::InferenceMode guard;
  for (int64_t start = 0; start < images.size(0); start += batch_size)
    f(images.narrow(0, start, std::min(batch_size, images.size(0) - start)).contiguous(at::MemoryFormat::ChannelsLast));
}

}  // namespace

at::Tensor as_held(const Value& v, const at::Tensor& x) {
  return v.quantized ? quant::fake_quant_act(x, act_qparams(v)) : x;
}

at::Tensor as_simulated(const Graph& g, const Node& n, const at::Tensor& y) {
  return as_held(g.values[size_t(n.output)], y);
}

at::Tensor simulate(const Graph& g, const at::Tensor& x) {
  QNAS_CHECK(g.calibrated, "deploy: simulate() on an uncalibrated graph; expected calibrate() first");
  return run(g, x, [&](const Node& n, const at::Tensor& y) { return as_simulated(g, n, y); });
}

void visit_values(const Graph& g, const at::Tensor& images, int64_t batch_size,
                  const std::function<void(int, const at::Tensor&)>& visit) {
  QNAS_CHECK(g.calibrated, "deploy: visit_values() on an uncalibrated graph; expected calibrate() first");
  for_each_batch(images, batch_size, [&](const at::Tensor& x) {
    visit(g.input, x);
    run(g, x, [&](const Node& n, const at::Tensor& y) {
      const at::Tensor out = as_simulated(g, n, y);
      visit(n.output, out);
      return out;
    });
  });
}

void visit_inputs(const Graph& g, size_t node, const at::Tensor& images, int64_t batch_size,
                  const std::function<void(const std::vector<at::Tensor>&)>& visit) {
  QNAS_CHECK(node < g.nodes.size(), "deploy: visit_inputs() of node ", node, "; the graph has ", g.nodes.size());
  for_each_batch(images, batch_size, [&](const at::Tensor& x) {
    visit(run_until(g, x, node, [](const Node&, const at::Tensor& y) { return y; }));
  });
}

void calibrate(Graph& g, const at::Tensor& images, int64_t batch_size, quant::ActObserverSpec observer) {
  QNAS_CHECK(images.size(0) > 0, "deploy: calibration needs images; got none");
  observer.bits = 8;
  observer.sample_cap = std::min<int64_t>(observer.sample_cap, 1 << 16);  // per value: ~100 values per graph
  std::vector<quant::ActObserver> observers(g.values.size(), quant::ActObserver(observer));
  for_each_batch(images, batch_size, [&](const at::Tensor& x) {
    run(g, x, [&](const Node& n, const at::Tensor& y) {
      const auto& v = g.values[size_t(n.output)];
      if (v.quantized && v.qsource == QSource::kObserved) observers[size_t(n.output)].observe(y);
      return y;
    });
  });
  for (const auto& n : g.nodes) {  // in order, so kInput sources are already set
    auto& v = g.values[size_t(n.output)];
    if (!v.quantized) continue;
    if (v.qsource == QSource::kObserved) {
      const auto q = observers[size_t(n.output)].qparams();
      v.q = {q.scale, q.zero_point};
    } else if (v.qsource == QSource::kInput) {
      v.q = g.values[size_t(n.inputs[0])].q;
    }
  }
  // An int8 layer's bias is stored as int32 on its accumulator grid
  // (s_in * s_w), as integer runtimes (ONNX Runtime, TFLite) hold it: the
  // graph uses that value everywhere, so every runtime computes the same.
  for (auto& n : g.nodes)
    if (n.has_weight() && n.int8) {
      const auto acc = accumulator_scales(n, g.values[size_t(n.inputs[0])].q);
      n.bias = bias_codes(n.bias, acc).to(at::kFloat) * acc;
    }
  g.calibrated = true;
}

}  // namespace qnas::deploy
