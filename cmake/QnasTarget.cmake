# Helpers shared by every qnas target.
#
# qnas_torch_pch: an object library whose only job is to own the precompiled
# header; LibTorch-using targets take it with REUSE_FROM, so the header is
# compiled once per build instead of once per target.

set(QNAS_WARNINGS -Wall -Wextra -Wno-unused-parameter)
# A unity build #includes .cpp files: GCC then takes a test fixture in an
# anonymous namespace for a header's type seen from several units and warns.
if(QNAS_UNITY_BUILD)
  list(APPEND QNAS_WARNINGS $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
endif()

add_library(qnas_torch_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/pch_anchor.cpp)
target_link_libraries(qnas_torch_pch PUBLIC torch OpenMP::OpenMP_CXX)
target_compile_options(qnas_torch_pch PRIVATE ${QNAS_WARNINGS})
target_precompile_headers(qnas_torch_pch PRIVATE
  <torch/torch.h> <nlohmann/json.hpp> <string> <vector> <map>)

# qnas_library(NAME SOURCES... [TORCH] [PLAIN_SOURCES...]) — one library
# target per folder, includes written from the repo root. PLAIN_SOURCES are
# sources of a TORCH library that include no LibTorch header: they compile
# without the torch PCH (loading it costs a TU more than compiling one of them).
function(qnas_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;PLAIN_SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES} ${ARG_PLAIN_SOURCES})
  if(ARG_PLAIN_SOURCES)
    set_source_files_properties(${ARG_PLAIN_SOURCES} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
  endif()
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE ${QNAS_WARNINGS})
  if(ARG_TORCH)
    target_link_libraries(${name} PUBLIC torch OpenMP::OpenMP_CXX)
    target_precompile_headers(${name} REUSE_FROM qnas_torch_pch)
  endif()
endfunction()

# qnas_torch_executable(NAME SOURCES... DEPS ...)
function(qnas_torch_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} torch OpenMP::OpenMP_CXX)
  target_compile_options(${name} PRIVATE ${QNAS_WARNINGS})
  target_precompile_headers(${name} REUSE_FROM qnas_torch_pch)
endfunction()
