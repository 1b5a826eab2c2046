#pragma once
// decoupleQ's second stage (REFERENCES.md 4): with the integer codes frozen,
// the float parts of each block's decoupleq layers (per-group scales and
// offsets, and the BN-folded biases) are trained with Adam so the quantized
// block's outputs match the fp32 block's on calibration inputs. Blocks are
// tuned in network order, each on the inputs the already-tuned graph gives
// it. A block keeps its update only if its loss over all calibration
// inputs drops.

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// One block's outcome: relative output MSE before and after, Adam steps.
struct BlockTune {
  std::string block;
  double loss_before = 0, loss_after = 0;
  int steps = 0;
  bool kept = false;
};

/// The block a node belongs to: "s1.b2" for "s1.b2.dw.act", else the first
/// name component ("stem", "head", "classifier").
std::string block_of(const std::string& node_name);

/// Tunes every block holding a decoupleq layer whose `tune_steps` parameter
/// (default 100) is > 0, for that many steps of 32 calibration images
/// (learning rate: its `tune_lr`, default 1e-4). `fp32_weights` maps each
/// layer to its BN-folded fp32 weight and bias (the targets' block). The
/// graph's activation parameters are used as they are (calibrate afterwards).
std::vector<BlockTune> tune_blocks(Graph& graph, const std::map<std::string, std::pair<at::Tensor, at::Tensor>>& fp32_weights,
                                   const at::Tensor& images, int64_t batch_size, uint64_t seed);

}  // namespace qnas::deploy
