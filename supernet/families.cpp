// The supernet families: one line each. A family is its own files under
// supernet/ (its elastic weights, space and extraction), its config section
// (core::SupernetConfig) and its line here.

#include "src/core/error.hpp"
#include "supernet/mbv3.hpp"
#include "supernet/resnet.hpp"
#include "supernet/vit.hpp"

namespace qnas::supernet {

const std::vector<Family>& families() {
  static const std::vector<Family> list{
      {"mbv3", "Once-for-All MobileNetV3: elastic depth, depthwise kernel and expand ratio", make_mbv3, tiny_mbv3},
      {"resnet", "Once-for-All ResNet (bottleneck blocks): elastic depth, width and bottleneck ratio", make_resnet,
       tiny_resnet},
      {"vit", "AutoFormer-style Vision Transformer: elastic embedding, depth, heads and MLP ratio", make_vit, tiny_vit,
       /*tiny_epochs=*/12},
  };
  return list;
}

const Family& family(const std::string& kind) {
  std::string kinds;
  for (const auto& f : families()) {
    if (kind == f.kind) return f;
    kinds += (kinds.empty() ? "" : ", ") + std::string(f.kind);
  }
  QNAS_THROW("supernet.kind: '", kind, "'; expected one of the families ", kinds);
}

}  // namespace qnas::supernet
