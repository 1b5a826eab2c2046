// The hand-written depthwise backward agrees with LibTorch's autograd and
// does not depend on the thread count.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "supernet/depthwise.hpp"

using namespace qnas;

namespace {

struct DepthwiseCase {
  int64_t n, c, h, k, stride;
};

class DepthwiseGrad : public ::testing::TestWithParam<DepthwiseCase> {};

}  // namespace

TEST_P(DepthwiseGrad, MatchesAutograd) {
  const auto p = GetParam();
  at::manual_seed(p.c * 7 + p.k);
  auto x = at::randn({p.n, p.c, p.h, p.h}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  auto w = at::randn({p.c, 1, p.k, p.k}).requires_grad_();
  const int64_t pad = p.k / 2;
  const auto ref = at::conv2d(x, w, {}, {p.stride, p.stride}, {pad, pad}, {1, 1}, p.c);
  const auto gy = at::randn_like(ref);
  const auto ref_g = torch::autograd::grad({ref}, {x, w}, {gy});
  const auto y = supernet::depthwise_conv2d(x, w, p.stride);
  EXPECT_TRUE(at::allclose(y, ref));
  const auto g = torch::autograd::grad({y}, {x, w}, {gy});
  EXPECT_TRUE(at::allclose(g[0], ref_g[0], 1e-4, 1e-5)) << (g[0] - ref_g[0]).abs().max().item<double>();
  EXPECT_TRUE(at::allclose(g[1], ref_g[1], 1e-4, 1e-3)) << (g[1] - ref_g[1]).abs().max().item<double>();
  // NCHW input gives the same gradients.
  auto x2 = x.detach().contiguous().requires_grad_();
  const auto g2 = torch::autograd::grad({supernet::depthwise_conv2d(x2, w, p.stride)}, {x2, w}, {gy});
  EXPECT_TRUE(at::allclose(g2[0], g[0]));
  EXPECT_TRUE(g2[1].equal(g[1]));
}

INSTANTIATE_TEST_SUITE_P(Shapes, DepthwiseGrad,
                         ::testing::Values(DepthwiseCase{4, 8, 9, 3, 1}, DepthwiseCase{3, 24, 8, 3, 2}, DepthwiseCase{5, 40, 7, 5, 1},
                                           DepthwiseCase{9, 16, 14, 5, 2}, DepthwiseCase{2, 48, 7, 7, 1}, DepthwiseCase{17, 8, 6, 7, 2},
                                           DepthwiseCase{1, 32, 4, 7, 2}));

TEST(Depthwise, SameResultOnOneAndTwoThreads) {
  at::manual_seed(0);
  const auto x = at::randn({20, 24, 10, 10}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto w = at::randn({24, 1, 5, 5});
  const auto gy = at::randn({20, 24, 10, 10}).contiguous(at::MemoryFormat::ChannelsLast);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto [gx1, gw1] = supernet::depthwise_conv2d_backward(x, w, gy, 1);
  at::set_num_threads(2);
  const auto [gx2, gw2] = supernet::depthwise_conv2d_backward(x, w, gy, 1);
  at::set_num_threads(threads);
  EXPECT_TRUE(gx1.equal(gx2));
  EXPECT_TRUE(gw1.equal(gw2));
}
