// FNV-1a (64 bit): a stable, dependency-free fingerprint of bytes, the same in
// every build and process (absl::Hash is not), for goldens and for caches
// that must notice when their inputs changed.
#ifndef DMUE_BASE_HASH_H_
#define DMUE_BASE_HASH_H_

#include <cstddef>
#include <cstdint>

namespace dmue {

inline constexpr uint64_t kFnvOffset = 14695981039346656037ull;

// FNV-1a of `size` bytes, continuing from `h`.
inline uint64_t Fnv1a64(const void* data, size_t size, uint64_t h = kFnvOffset) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

}  // namespace dmue

#endif  // DMUE_BASE_HASH_H_
