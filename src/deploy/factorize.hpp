#pragma once
// CP-factorized layers in the deployed graph (REFERENCES.md §5): a conv
// weight W [Cout, Cin, kh, kw] ~ [[A, B, C]] (Cout x Cin x kh*kw, rank R) runs
// as three ordinary weight nodes,
//   1x1 conv Cin -> R (B^T)  ->  depthwise kh x kw conv on R channels (C, the
//   layer's stride)  ->  1x1 conv R -> Cout (A, the layer's bias and activation),
// each factor on its per-tensor symmetric grid (int8 kernels when activations
// are 8-bit; every value between is quantized like any layer input). A 1x1
// conv or linear (K = 1) runs as two: C's single row folds into the first
// node's per-channel scales (scale_r = step_B * |C_r|, the sign on the codes),
// which keeps that node on a symmetric per-channel grid. The last node keeps
// the layer's name, so everything that finds a layer by name (its bias, its
// smoothing) finds the node that carries the layer's bias and output.
// Depthwise layers are not factorized (their policy's bits apply by RTN).

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "src/deploy/graph.hpp"

namespace qnas::deploy {

/// A conv with groups 1 or a linear whose policy factorizes (admm_cp, cp_rtn).
bool factorizable(const Node& layer);

struct FactorizedLayer {
  std::vector<Node> parts;  // execution order; inputs/output unset
  at::Tensor weight;        // [[A, B, C]] on the grids, the layer's weight shape (fp32)
  int64_t rank = 0;
  double relative_error = 0;  // |W - [[A, B, C]]| / |W|
};

/// Factorizes a layer node at its policy's bits and `rank_rate`: admm_cp by
/// AO-ADMM, cp_rtn by CP-ALS then rounding; `w` is its fp32 weight.
FactorizedLayer factorize(const Node& layer, const at::Tensor& w);

/// Replaces node `node` of the graph by the parts of its factorization:
/// the first reads the node's input, the last writes its output, new values
/// (quantized as the layer's input is) lie between.
void replace_with_parts(Graph& graph, size_t node, std::vector<Node> parts);

/// A folded BatchNorm's affine parameters.
struct BnAffine {
  at::Tensor gamma, beta;
};

/// BN recalibration after factorizing (REFERENCES.md §5), on the BN-folded
/// graph: the node named by each key of `bn` (a factorized layer's last part)
/// gets a per-channel affine on its pre-activation output that makes its
/// mean and standard deviation on `images` the BN's beta and |gamma| again,
/// which is what recalibrating the BN after the factorized conv gives. Layers
/// in graph order, each measured with the earlier ones corrected, weights
/// quantized and activations in fp32 (their ranges are calibrated after).
/// The codes stay: the per-channel scales and the bias change.
void recalibrate_factorized_bn(Graph& graph, const std::map<std::string, BnAffine>& bn, const at::Tensor& images,
                               int64_t batch_size);

}  // namespace qnas::deploy
