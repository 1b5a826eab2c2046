#pragma once
// The conformance suites run once per supernet family: a family is tested
// by being listed in supernet/families.cpp.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "supernet/supernet.hpp"

namespace qnas::testing {

inline std::vector<std::string> family_kinds() {
  std::vector<std::string> kinds;
  for (const auto& f : supernet::families()) kinds.push_back(f.kind);
  return kinds;
}

/// Test fixtures parameterised by a family's kind.
class FamilyTest : public ::testing::TestWithParam<std::string> {
 protected:
  const std::string& kind() const { return GetParam(); }
};

inline std::string family_test_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace qnas::testing

/// Instantiates the FamilyTest-derived suite `suite` once per family.
#define QNAS_FOR_EVERY_FAMILY(suite)                                                                      \
  INSTANTIATE_TEST_SUITE_P(Families, suite, ::testing::ValuesIn(qnas::testing::family_kinds()), \
                           qnas::testing::family_test_name)
