#pragma once
// LayerPolicy: how one compressible layer is compressed. Plain data with a
// stable JSON form; no LibTorch here.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qnas::quant {

/// Bit-widths a layer may use at all; what a run searches is a subset (config).
inline constexpr int kLegalWeightBits[] = {2, 3, 4, 8, 32};
inline constexpr int kLegalActBits[] = {8, 32};

/// What a compression method is, in one table (policy.cpp's method_table()):
/// the code asks these traits instead of comparing method names.
struct MethodTraits {
  std::string name;
  std::vector<std::string> params;  // the parameters it takes (check_policy documents them)
  int max_weight_bits = 32;         // 8: it fits weights to a low-bit grid, so weights <= 8
  bool w8a8_only = false;           // it needs 8-bit weights and 8-bit activations
  bool needs_hessian = false;       // fitted against H = mean(x x^T) of the layer's inputs
  bool free_offsets = false;        // a float offset per row or group: a general grid, fp32 kernels
  bool factorizes = false;          // deployed as CP factors (conv and linear layers but depthwise)
  bool smooths_inputs = false;      // divides the layer's input channels (SmoothQuant)
  bool tunes_blocks = false;        // a block-wise second stage (its `tune_steps`)
  bool fits_outputs = false;        // fits its weights to reproduce the fp32 layer's outputs or weights
                                    // (not their round-to-nearest grid): BN sees fp32 statistics
};

/// Every method, in the order of method_names().
const std::vector<MethodTraits>& method_table();
/// The traits of `method`; throws listing the methods for another name.
const MethodTraits& method_traits(const std::string& method);

struct LayerPolicy {
  int weight_bits = 32;  // per-channel symmetric round-to-nearest below 32
  int act_bits = 32;     // per-tensor asymmetric on the layer's input below 32
  std::string method = "rtn";             // rtn | gptq | decoupleq | smoothquant | admm_cp | cp_rtn
  std::map<std::string, double> params;  // method parameters (group, sym, alpha, ...)

  bool quantizes_weights() const { return weight_bits < 32; }
  /// params[key], or `fallback` when the policy does not set it.
  double param(const std::string& key, double fallback) const;
  bool quantizes_acts() const { return act_bits < 32; }
  /// Its input quantized with calibrated parameters (not per call: `dynamic`).
  bool calibrates_input() const { return quantizes_acts() && param("dynamic", 0) != 1; }
  /// Weights on a general grid (a method with free offsets, or a `group`
  /// or `sym: 0` parameter): a scale and an offset per (output channel,
  /// group), fp32 kernels. Otherwise symmetric per channel below 32 bits.
  bool general_grid() const {
    return weight_bits < 32 && (method_traits(method).free_offsets || param("group", 0) > 0 || param("sym", 1) == 0);
  }
  /// Weight groups per output channel of a layer with `cols` input columns.
  int64_t weight_groups(int64_t cols) const {
    const auto group = int64_t(param("group", 0));
    return group > 0 ? cols / group : 1;
  }
  /// CP-factorized (admm_cp, cp_rtn): conv and linear layers other than
  /// depthwise ones are deployed as their factors (deploy/factorize.hpp).
  bool factorizes() const { return weight_bits < 32 && method_traits(method).factorizes; }
  /// Whether a layer with this policy deploys as its CP factors: grouped
  /// (depthwise) convs are not factorized; their policy's bits apply by RTN.
  bool factorizes_layer(bool grouped) const { return factorizes() && !grouped; }
  /// Whether the layer's deployed weights lie on its RTN grid, i.e. its
  /// method does not fit them to the fp32 layer (gptq, decoupleq, and the
  /// factorizations where they apply).
  bool deploys_rtn_grid(bool grouped) const {
    const auto& m = method_traits(method);
    return quantizes_weights() && !factorizes_layer(grouped) && (m.factorizes || !m.fits_outputs);
  }
  bool operator==(const LayerPolicy& o) const {
    return weight_bits == o.weight_bits && act_bits == o.act_bits && method == o.method &&
           params == o.params;
  }
  bool operator!=(const LayerPolicy& o) const { return !(*this == o); }
};

// --- Stored sizes (what an export holds) -------------------------------------

inline constexpr int64_t kFloatBytes = 4;
inline constexpr int64_t kActQParamBytes = 4 + 1;  // fp32 scale + uint8 zero point

/// `numel` weight codes packed at `bits`: ceil(numel * bits / 8) bytes.
inline int64_t packed_weight_bytes(int64_t numel, int bits) { return (numel * bits + 7) / 8; }

/// What one layer's weights and bias store: the codes packed at `bits`, below
/// 32 bits an fp32 scale per grid (an output channel, or an (output channel,
/// group) pair on a general grid) and on a general grid an fp32 offset per
/// grid too, and an fp32 bias. The one count behind both model_bytes: the
/// shape proxies' (eval::model_bytes, from a policy) and the deployed
/// graph's (deploy::Graph::model_bytes, from the tensors).
inline int64_t stored_layer_bytes(int64_t weight_numel, int64_t grids, int bits, bool general_grid, int64_t bias_numel) {
  const int64_t grid_floats = bits < 32 ? (general_grid ? 2 : 1) * grids : 0;
  return packed_weight_bytes(weight_numel, bits) + kFloatBytes * (grid_floats + bias_numel);
}

/// stored_layer_bytes of a layer under its policy.
inline int64_t stored_layer_bytes(int64_t weight_numel, int64_t out_channels, int64_t bias_numel, const LayerPolicy& p) {
  const bool general = p.general_grid();
  const int64_t grids = out_channels * (general ? p.weight_groups(weight_numel / out_channels) : 1);
  return stored_layer_bytes(weight_numel, grids, p.weight_bits, general, bias_numel);
}

/// The weights' part of stored_layer_bytes.
inline int64_t stored_weight_bytes(int64_t numel, int64_t out_channels, const LayerPolicy& p) {
  return stored_layer_bytes(numel, out_channels, 0, p);
}

/// CP rank from a reduction rate (REFERENCES.md §5): floor(I*J*K / (I + J + K)
/// / rate), at least 1, for a Cout x Cin x k^2 weight (I, J, K).
int64_t cp_rank(int64_t i, int64_t j, int64_t k, double reduction_rate);

/// The default `rank_rate` of the factorizing methods.
inline constexpr double kDefaultRankRate = 2.0;

/// The CP rank of a Cout x Cin x k^2 weight under a factorizing policy (its
/// `rank_rate`, kDefaultRankRate when unset).
int64_t cp_rank_of(const LayerPolicy& p, int64_t i, int64_t j, int64_t k);

/// "w4a8", "w32a32": a compact label for tables.
std::string policy_label(const LayerPolicy& p);

/// The compression methods a policy may name.
const std::vector<std::string>& method_names();

/// A method with its parameters: one choice of a searched per-layer method.
struct MethodChoice {
  std::string method = "rtn";
  std::map<std::string, double> params;
  bool operator==(const MethodChoice& o) const { return method == o.method && params == o.params; }
};

/// "gptq act_order=1 damp=0.02" -> {gptq, {act_order: 1, damp: 0.02}};
/// throws naming `where` on bad syntax, an unknown method or parameter, or a
/// value out of range (as check_policy).
MethodChoice parse_method_choice(const std::string& text, const std::string& where);
/// The inverse of parse_method_choice.
std::string method_choice_text(const MethodChoice& m);

/// Whether the method can compress a layer at these bits: rtn always;
/// gptq, decoupleq, admm_cp, cp_rtn weights <= 8 bits; smoothquant W8A8.
bool method_applies(const std::string& method, int weight_bits, int act_bits);

/// Throws qnas::Error naming `where` when a field is outside its legal set:
/// bits, method, a parameter the method does not take or out of its range
///   rtn          group (columns per group, 0: per channel), sym (0/1, default 1),
///                per_tensor (0/1: one scale for the whole weight; not with group),
///                dynamic (0/1: the input quantized per call from its min/max instead
///                of calibrated ranges; linear layers, W<=8 A8 symmetric)
///   gptq         group, sym (default 1), per_tensor, act_order (0/1), damp (0..1, default 0.01)
///   decoupleq    group, iterations (default 4), tune_steps (second stage:
///                Adam steps per block, default 100; 0: off), tune_lr (1e-4);
///                weight_bits <= 8
///   smoothquant  alpha ([0, 1], default 0.5), per_tensor; W8A8 only
///   admm_cp      rank_rate (>= 1, default 2): CP factors found by AO-ADMM on
///                their grids; weight_bits <= 8 (the factors' bits)
///   cp_rtn       rank_rate: CP-ALS factors, then rounded to their grids
void check_policy(const LayerPolicy& p, const std::string& where);

void to_json(nlohmann::json& j, const LayerPolicy& p);
/// Strict: unknown keys and wrong types are errors naming `where`.
LayerPolicy policy_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace qnas::quant
