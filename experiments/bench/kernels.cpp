// bench_kernels: qnas's training kernels against LibTorch's, side by side.
//
//   depthwise  forward + backward of a depthwise convolution: LibTorch's
//              autograd vs supernet::depthwise_conv2d (same forward,
//              hand-written backward)
//   bn_act     forward + backward of batch norm (batch statistics) followed
//              by an activation: LibTorch's two ops vs supernet::batch_norm_act
//
// Shapes are the supernet's: batch 128, channels-last. Each row also gives
// the largest difference between the two implementations' gradients.
//
//   build/bench/bench_kernels --format md

#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include "src/core/runtime.hpp"
#include "src/core/table.hpp"
#include "supernet/bn_act.hpp"
#include "supernet/depthwise.hpp"

using namespace qnas;

namespace {

double median_ms(const std::function<void()>& f, int repeats) {
  f();  // warm-up (oneDNN primitive cache)
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

void add_row(core::Table& t, const std::string& op, const std::string& shape, double ref, double ours, double diff) {
  t.add({op, shape, core::fixed(ref, 2), core::fixed(ours, 2), core::fixed(ref / ours, 2), core::fixed(diff, 7)});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qnas training kernels against LibTorch"};
  int threads = 2, repeats = 7, batch = 128;
  std::string format = "md";
  app.add_option("--threads", threads, "LibTorch threads")->capture_default_str();
  app.add_option("--repeats", repeats, "timed repeats (median reported)")->capture_default_str();
  app.add_option("--batch", batch, "batch size")->capture_default_str();
  app.add_option("--format", format, "text | csv | md | json")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  core::tune_process();
  at::set_num_threads(threads);
  at::manual_seed(0);
  core::Table t({"op", "shape", "libtorch_ms", "qnas_ms", "speedup", "max_grad_diff"});

  struct Dw { int64_t c, h, k, stride; };
  for (const Dw& d : std::vector<Dw>{{96, 28, 3, 2}, {96, 28, 5, 2}, {144, 14, 5, 1}, {144, 14, 7, 1}, {240, 7, 5, 1}}) {
    auto x = at::randn({batch, d.c, d.h, d.h}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
    auto w = at::randn({d.c, 1, d.k, d.k}).requires_grad_();
    const int64_t pad = d.k / 2;
    auto ref = [&] { return at::conv2d(x, w, {}, {d.stride, d.stride}, {pad, pad}, {1, 1}, d.c); };
    const auto gy = at::randn_like(ref());
    const auto rg = torch::autograd::grad({ref()}, {x, w}, {gy});
    const auto og = torch::autograd::grad({supernet::depthwise_conv2d(x, w, d.stride)}, {x, w}, {gy});
    const double a = median_ms([&] { torch::autograd::grad({ref()}, {x, w}, {gy}); }, repeats);
    const double b = median_ms([&] { torch::autograd::grad({supernet::depthwise_conv2d(x, w, d.stride)}, {x, w}, {gy}); }, repeats);
    add_row(t, "depthwise k" + std::to_string(d.k) + " s" + std::to_string(d.stride),
            std::to_string(batch) + "x" + std::to_string(d.c) + "x" + std::to_string(d.h) + "x" + std::to_string(d.h),
            a, b, std::max(max_diff(rg[0], og[0]), max_diff(rg[1], og[1]) / rg[1].abs().max().item<double>()));
  }

  struct Bn { int64_t c, h; supernet::Act act; const char* name; };
  for (const Bn& d : std::vector<Bn>{{96, 28, supernet::Act::kRelu, "relu"}, {144, 14, supernet::Act::kHswish, "hswish"},
                                     {240, 7, supernet::Act::kNone, "none"}, {16, 28, supernet::Act::kHswish, "hswish"}}) {
    auto x = at::randn({batch, d.c, d.h, d.h}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
    auto g = (at::rand({d.c}) + 0.5).requires_grad_();
    auto b = (at::randn({d.c}) * 0.1).requires_grad_();
    auto ref = [&] { return supernet::apply_act(at::batch_norm(x, g, b, {}, {}, true, 0.1, supernet::kBnEps, true), d.act); };
    const auto gy = at::randn_like(ref());
    const auto rg = torch::autograd::grad({ref()}, {x, g, b}, {gy});
    const auto og = torch::autograd::grad({supernet::batch_norm_act(x, g, b, d.act)}, {x, g, b}, {gy});
    const double ta = median_ms([&] { torch::autograd::grad({ref()}, {x, g, b}, {gy}); }, repeats);
    const double tb = median_ms([&] { torch::autograd::grad({supernet::batch_norm_act(x, g, b, d.act)}, {x, g, b}, {gy}); }, repeats);
    // Relative difference of the affine gradients (elements at an activation's
    // kink may flip between float implementations; see tests/supernet/test_bn_act.cpp).
    add_row(t, std::string("bn+") + d.name,
            std::to_string(batch) + "x" + std::to_string(d.c) + "x" + std::to_string(d.h) + "x" + std::to_string(d.h),
            ta, tb, max_diff(rg[2], og[2]) / rg[2].abs().max().item<double>());
  }
  std::printf("%s", t.render(format).c_str());
  return 0;
}
