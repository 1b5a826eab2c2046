// The supernet families: one line each. A family is its own files under
// supernet/ (its elastic weights, space and extraction) plus its line here.

#include "src/core/error.hpp"
#include "supernet/mbv3.hpp"

namespace qnas::supernet {

const std::vector<Family>& families() {
  static const std::vector<Family> list{
      {"mbv3", "Once-for-All MobileNetV3: elastic depth, depthwise kernel and expand ratio", make_mbv3},
  };
  return list;
}

Supernet make_supernet(const core::Config& cfg, const InputShape& input) {
  std::string kinds;
  for (const auto& f : families()) {
    if (cfg.supernet.kind == f.kind) return f.make(cfg, input);
    kinds += (kinds.empty() ? "" : ", ") + std::string(f.kind);
  }
  QNAS_THROW("supernet.kind: '", cfg.supernet.kind, "'; expected one of the families ", kinds);
}

}  // namespace qnas::supernet
