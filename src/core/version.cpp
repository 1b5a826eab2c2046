#include "src/core/version.hpp"

namespace qnas::core {

const char* version() { return QNAS_VERSION; }

}  // namespace qnas::core
