// Deterministic seed derivation shared by the samplers, transforms, loader and
// synthetic generator: every random stream is a pure function of the user's
// seed and the coordinates of what it randomises (epoch, sample position,
// image index), so results do not depend on thread scheduling or worker count.
#ifndef DATASETS_SEED_H_
#define DATASETS_SEED_H_

#include <cstdint>
#include <initializer_list>

namespace dmue::datasets {

// SplitMix64 finaliser.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Mixes a seed with any number of coordinates into a new 64-bit seed.
inline uint64_t MixSeed(uint64_t seed, std::initializer_list<uint64_t> coordinates) {
  uint64_t h = SplitMix64(seed);
  for (uint64_t c : coordinates) h = SplitMix64(h ^ SplitMix64(c + 0x632be59bd9b4e019ULL));
  return h;
}

}  // namespace dmue::datasets

#endif  // DATASETS_SEED_H_
