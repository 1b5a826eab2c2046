#pragma once
// The activation kinds and their names, without LibTorch (the deployed-model
// checks and their fuzz target read the names).

#include <cstddef>

namespace qnas::supernet {

// From one list: the enum and the name table cannot disagree.
#define QNAS_ACTS(X) \
  X(kNone, "none") X(kRelu, "relu") X(kHswish, "hswish") X(kHsigmoid, "hsigmoid") X(kGelu, "gelu")

#define QNAS_ENUM_VALUE(id, name) id,
#define QNAS_ENUM_NAME(id, name) name,
enum class Act { QNAS_ACTS(QNAS_ENUM_VALUE) };
inline constexpr const char* kActNames[] = {QNAS_ACTS(QNAS_ENUM_NAME)};
inline constexpr size_t kActCount = sizeof(kActNames) / sizeof(kActNames[0]);

inline const char* act_name(Act a) { return kActNames[size_t(a)]; }

}  // namespace qnas::supernet
