#pragma once
// Training-mode batch normalisation fused with its activation, for
// channels-last float tensors. LibTorch runs BN and the activation as
// separate passes (forward 2 + 2 over memory, backward 3 + 2); fused, the
// forward reads the input twice and writes once, the backward reads twice,
// writes once and recomputes the activation's input instead of storing it.
// BN and activations are memory-bound and take about a third of a supernet
// training step (measured: experiments/bench/train_throughput.py).
//
// Statistics are summed per fixed chunk of rows and the chunks combined in
// double precision in order: results do not depend on the thread count.

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "supernet/ops.hpp"

namespace qnas::supernet {

/// act(batch_norm(x, gamma, beta)) with batch statistics (biased variance for
/// normalisation, eps = kBnEps). x: N x C x H x W (any memory format) or N x C.
/// Differentiable in x, gamma and beta. Returns channels-last for 4-D input.
at::Tensor batch_norm_act(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, Act act);

/// Synchronised BN for data-parallel training: while `sum` is set,
/// batch_norm_act sums its per-channel statistics (forward) and gradient
/// sums (backward) and its row count over the processes through it (in
/// place), as PyTorch's SyncBatchNorm does. Every process must then make the
/// same calls: the trainer sets it around its steps only.
struct BnSync {
  std::function<void(std::vector<double>&)> sum;
};
/// Sets this process's BN synchronisation (an empty `sum` clears it).
void set_bn_sync(BnSync sync);

}  // namespace qnas::supernet
