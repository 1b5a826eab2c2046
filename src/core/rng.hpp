#pragma once
// Seeding: every random stream is derived from (seed, stream name, index) so
// that a resumed run can recreate the stream of any epoch without saving
// generator states.

#include <cstdint>
#include <random>
#include <string_view>

namespace qnas::core {

/// SplitMix64 finaliser: a well-mixed 64-bit hash of x.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// FNV-1a 64 of a string: stable across compilers and runs.
constexpr uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h;
}

/// The seed of stream `name` number `index` of a run seeded with `seed`.
constexpr uint64_t derive_seed(uint64_t seed, std::string_view name, uint64_t index = 0) {
  return mix64(mix64(seed ^ fnv1a64(name)) + index);
}

using Rng = std::mt19937_64;

/// Uniform integer in [0, n): std::uniform_int_distribution is not specified
/// identically across standard libraries; this is.
inline int64_t uniform_index(Rng& rng, int64_t n) {
  return int64_t(rng() % uint64_t(n));
}

/// Uniform double in [0, 1) from the top 53 bits of any 64-bit generator.
template <class Generator>
inline double uniform01(Generator& rng) { return double(rng() >> 11) * 0x1.0p-53; }

}  // namespace qnas::core
