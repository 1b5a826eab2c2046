#pragma once
// Weight methods that need calibration data, applied to a calibrated graph:
// GPTQ and decoupleQ (stage one) per layer, from each layer's input second
// moment H = mean(x x^T) over calibration images.
//
// One pass of the simulated graph (round-to-nearest weights, activations
// fake-quantized as deployed) gives every layer's inputs at once, so each
// layer is compressed against the inputs of the RTN-quantized network rather
// than of its already-compressed predecessors (GPTQ's sequential variant):
// one forward pass instead of one per layer. A convolution's H takes about
// `samples_per_column` samples per column of H (seeded random output
// positions, at most 64 per image: quant::LayerShape). Activation ranges are
// recalibrated afterwards, since the weights changed.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "src/deploy/graph.hpp"
#include "src/quant/act_observer.hpp"

namespace qnas::supernet {
class SubnetImpl;
}

namespace qnas::deploy {

/// What compressing one layer did: output error
/// |WX - W~X|^2 / |WX|^2 on the calibration inputs of round-to-nearest on
/// the same grid and of the layer's method.
struct LayerCompression {
  std::string layer, method;
  int weight_bits = 32;
  int64_t group = 0;        // input columns per group; 0: per channel
  int64_t rank = 0;         // CP rank of a factorized layer (admm_cp, cp_rtn); 0: not factorized
  double rtn_error = 0, error = 0;
  double seconds = 0;       // the method's time for this layer
};

/// True when some layer's method needs compress_weights().
bool needs_compression(const Graph& graph);

struct CompressSettings {
  int64_t hessian_images = 512;     // the first of the calibration images
  int64_t samples_per_column = 64;  // conv layers: samples of H per column
  int64_t batch_size = 256;
  quant::ActObserverSpec act_observer;  // for the recalibration
};

/// Compresses every gptq / decoupleq layer of the calibrated graph of
/// `subnet` (its BN-folded fp32 weights are the targets), H from the first
/// `hessian_images` of `images`; replaces every admm_cp / cp_rtn layer by
/// its factors (deploy/factorize.hpp; depthwise layers keep round-to-nearest); smooths every smoothquant layer (factors
/// from the per-channel max |x| of its input over the same images, the
/// division folded or a scale node inserted: deploy/smooth.hpp); then
/// recalibrates activations on all of `images`. Reports every gptq /
/// decoupleq / factorized layer (a smoothquant layer changes its input too, so a weight
/// error says nothing of it; rtn layers need no H).
std::vector<LayerCompression> compress_weights(Graph& graph, const supernet::SubnetImpl& subnet,
                                               const at::Tensor& images, const CompressSettings& settings);

}  // namespace qnas::deploy
