#pragma once
// Depthwise convolution for training: oneDNN's forward, and a hand-written
// backward. In LibTorch 1.13 on CPU the depthwise backward costs 7-16x its
// forward (measured: build/bench/bench_kernels) and dominates supernet
// training; this backward computes grad_input and grad_weight in one pass
// over channels-last data, vectorised over channels.
//
// Deterministic for a given thread count: grad_weight is summed per fixed
// batch chunk, and the chunks are added in order.

#include <ATen/core/Tensor.h>

namespace qnas::supernet {

/// y = depthwise conv of x (N x C x H x W, any memory format) with w
/// (C x 1 x k x k), stride `stride`, padding k / 2, no bias. Differentiable
/// in x and w; y is channels-last.
at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& w, int64_t stride);

/// The backward kernels alone (exposed for tests and benchmarks): given x,
/// w and grad_y, returns {grad_x, grad_w}.
std::pair<at::Tensor, at::Tensor> depthwise_conv2d_backward(const at::Tensor& x, const at::Tensor& w,
                                                            const at::Tensor& grad_y, int64_t stride);

}  // namespace qnas::supernet
