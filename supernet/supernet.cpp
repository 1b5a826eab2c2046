#include "supernet/supernet.hpp"

#include <ATen/core/grad_mode.h>

namespace qnas::supernet {

Subnet SupernetImpl::extract(const SubnetSpec& spec) const {
  at::NoGradGuard no_grad;
  SubnetBuilder b(spec);
  build(b);
  return b.finish();
}

std::vector<LayerInfo> SupernetImpl::layer_infos(const SubnetSpec& spec) const {
  SubnetBuilder b(spec, /*shapes_only=*/true);
  build(b);
  return b.layer_infos();
}

bool SupernetImpl::decays(const std::string& name) const {
  for (const char* skip : {"_gamma", "_beta", "bias", "transform"})
    if (name.find(skip) != std::string::npos) return false;
  return true;
}

Supernet make_supernet(const core::Config& cfg, const InputShape& input) {
  return family(cfg.supernet.kind).make(cfg, input);
}

}  // namespace qnas::supernet
