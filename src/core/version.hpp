#pragma once
// qnas's version (CMake's project version), for --version and the files that
// record which qnas wrote them.

namespace qnas::core {

const char* version();

}  // namespace qnas::core
