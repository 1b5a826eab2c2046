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

struct LayerPolicy {
  int weight_bits = 32;  // per-channel symmetric round-to-nearest below 32
  int act_bits = 32;     // per-tensor asymmetric on the layer's input below 32
  std::string method = "rtn";             // rtn | gptq | decoupleq | smoothquant
  std::map<std::string, double> params;  // method parameters (group, sym, alpha, ...)

  bool quantizes_weights() const { return weight_bits < 32; }
  /// params[key], or `fallback` when the policy does not set it.
  double param(const std::string& key, double fallback) const;
  bool quantizes_acts() const { return act_bits < 32; }
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

/// Weights packed at `bits` plus, below 32 bits, one fp32 scale per output
/// channel (symmetric: no zero point).
inline int64_t stored_weight_bytes(int64_t numel, int64_t out_channels, int bits) {
  return packed_weight_bytes(numel, bits) + (bits < 32 ? kFloatBytes * out_channels : 0);
}

/// "w4a8", "w32a32": a compact label for tables.
std::string policy_label(const LayerPolicy& p);

/// The compression methods a policy may name.
const std::vector<std::string>& method_names();

/// Throws qnas::Error naming `where` when a field is outside its legal set:
/// bits, method, a parameter the method does not take or out of its range
///   rtn          group (columns per group, 0: per channel), sym (0/1, default 1)
///   gptq         group, sym (default 1), act_order (0/1), damp (0..1, default 0.01)
///   decoupleq    group, iterations (default 4); weight_bits <= 8
///   smoothquant  alpha ([0, 1], default 0.5); W8A8 only
void check_policy(const LayerPolicy& p, const std::string& where);

void to_json(nlohmann::json& j, const LayerPolicy& p);
/// Strict: unknown keys and wrong types are errors naming `where`.
LayerPolicy policy_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace qnas::quant
