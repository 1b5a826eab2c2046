#pragma once
// A tiny supernet's subnets deployed as graphs, shared by the deploy suites.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "src/core/dataset.hpp"
#include "src/core/fs.hpp"
#include "src/deploy/export.hpp"
#include "src/deploy/graph.hpp"
#include "src/deploy/int8_runtime.hpp"
#include "src/deploy/simulate.hpp"
#include "src/eval/evaluator.hpp"
#include "src/eval/session.hpp"
#include "supernet/trainer.hpp"
#include "tests/test_util.hpp"

namespace qnas::testing {

inline const core::Dataset& data() {
  static const core::Dataset d = core::load_dataset(tiny_config().data, 1);
  return d;
}

/// The first n images of a split, normalised, channels-last.
inline at::Tensor batch(const core::Split& split, int64_t n) {
  return split.images(0, n).contiguous(at::MemoryFormat::ChannelsLast);
}

/// The tiny supernet of family `kind` after its tiny_epochs on its data subset
/// (trained once per test process and family): exports are compared on
/// argmax, which needs logits that are not near-ties as an untrained net's are.
inline supernet::Supernet trained_tiny_net(const std::string& kind = "mbv3") {
  static std::map<std::string, supernet::Supernet> trained;
  auto& net = trained[kind];
  if (!net) {
    TempDir dir("trained_" + kind);
    auto cfg = tiny_config(dir.str(), kind);
    cfg.train.epochs = supernet::family(kind).tiny_epochs;
    auto session = eval::open_session(cfg);
    supernet::Trainer trainer(cfg, session.net, session.data);
    trainer.run({});
    net = session.net;
  }
  return net;
}

struct Deployed {
  supernet::Subnet subnet;
  deploy::Graph graph;
};

inline Deployed deploy_spec(const supernet::Supernet& net, const supernet::SubnetSpec& spec) {
  Deployed d{net->extract(spec), {}};
  eval::recalibrate_bn(*d.subnet, batch(data().train, 256), 128);
  d.subnet->fold_bn();
  d.graph = deploy::build_graph(*d.subnet, eval::input_desc(data()));
  deploy::calibrate(d.graph, batch(data().train, 256), 128);
  return d;
}

/// False, saying so on stderr, when this CPU's int8 kernels may saturate on
/// g (deploy::int8_may_saturate): its int8 outputs cannot be held to the
/// simulation there.
inline bool int8_checkable(const deploy::Graph& g, const std::string& what) {
  if (!deploy::int8_may_saturate(g)) return true;
  std::fprintf(stderr, "[ not checked ] %s: %s\n", what.c_str(), deploy::int8_saturation_note());
  return false;
}

/// Raw pixels in [0,1] of the first n test images (what exports take).
inline at::Tensor raw_pixels(int64_t n) {
  return (data().test.pixels.narrow(0, 0, n).to(at::kFloat) / 255.0f).contiguous();
}

/// Exports g (deployed from `spec`) in `format` into dir; returns dir.
inline std::string export_to(const deploy::Graph& g, const supernet::SubnetSpec& spec, const std::string& format,
                             const std::string& dir) {
  deploy::ExportOptions o;
  o.format = deploy::parse_export_format(format);
  o.out_dir = dir;
  o.spec = supernet::to_json(spec);
  deploy::export_graph(g, o);
  return dir;
}

/// Logits of the deployed model on raw pixels (what an export is compared with).
inline at::Tensor deployed_logits(const deploy::Graph& g, const at::Tensor& raw) {
  c10::InferenceMode guard;
  return deploy::Int8Model(g).forward(deploy::normalize_input(raw, g.input_desc).contiguous(at::MemoryFormat::ChannelsLast));
}

inline double argmax_agreement(const at::Tensor& a, const at::Tensor& b) {
  return a.argmax(1).eq(b.argmax(1)).to(at::kDouble).mean().item<double>();
}

/// Argmax agreement over the images whose top-2 margin in b exceeds `margin`
/// (1 when there are none): two int8 runtimes that round differently may
/// flip near-ties, and only near-ties.
inline double decided_agreement(const at::Tensor& a, const at::Tensor& b, double margin) {
  const auto top2 = std::get<0>(b.topk(2, 1));
  const auto decided = (top2.select(1, 0) - top2.select(1, 1)).gt(margin);
  if (decided.sum().item<int64_t>() == 0) return 1.0;
  return a.argmax(1).eq(b.argmax(1)).masked_select(decided).to(at::kDouble).mean().item<double>();
}

/// Raw fp32 files: what tests/node/run_onnx.js reads and writes.
inline void write_floats(const std::string& path, const at::Tensor& t) {
  const auto c = t.contiguous();
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.nbytes()));
}

inline at::Tensor read_floats(const std::string& path, std::vector<int64_t> shape) {
  const auto bytes = core::read_text_file(path, "float output");
  auto t = at::empty(shape, at::kFloat);
  EXPECT_EQ(bytes.size(), size_t(t.nbytes())) << path;
  std::memcpy(t.data_ptr(), bytes.data(), std::min(bytes.size(), size_t(t.nbytes())));
  return t;
}

}  // namespace qnas::testing
