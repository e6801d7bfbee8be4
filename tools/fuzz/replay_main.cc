// Runs a libFuzzer target without libFuzzer, so every fuzz target also builds
// with the normal gcc toolchain: as a cc_test over its committed seed corpus
// (the CI smoke) and as a standalone reproducer for crash files.
//
//   <target>_replay_test [--mutants=N] <file or directory>...
//
// Every seed runs as it is and then as N cheap deterministic variants
// (prefixes, single-byte changes), so the smoke reaches the truncation and
// corruption paths of each parser without a fuzzing engine. Each input gets a
// heap buffer of exactly its size, as libFuzzer gives it, so a sanitizer build
// catches reads past its end.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tools/fuzz/seed_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional in a target, as with libFuzzer.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc,
                                                          char*** argv);

namespace dmue::fuzz {
namespace {

int64_t g_inputs = 0;

void RunOne(const std::string& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  LLVMFuzzerTestOneInput(copy.get(), bytes.size());
  ++g_inputs;
}

// Variant `i` of `seed`: the first 16 are prefixes, the rest change one byte
// at a pseudo-random position in one of the ways that break parsers (flipped
// high/low bit, 0x00, 0xff, off by one).
std::string Mutant(const std::string& seed, int i) {
  constexpr int kPrefixes = 16;
  if (i < kPrefixes) {
    return seed.substr(0, seed.size() * (i + 1) / (kPrefixes + 1));
  }
  std::string out = seed;
  const size_t pos = (static_cast<uint64_t>(i) * 0x9E3779B1u + 7) % out.size();
  unsigned char& b = reinterpret_cast<unsigned char&>(out[pos]);
  switch (i % 6) {
    case 0:
      b ^= 0x01;
      break;
    case 1:
      b ^= 0x80;
      break;
    case 2:
      b = 0x00;
      break;
    case 3:
      b = 0xff;
      break;
    case 4:
      ++b;
      break;
    default:
      --b;
      break;
  }
  return out;
}

bool ReplayPath(const std::string& path, int mutants, int64_t* seeds) {
  absl::StatusOr<std::vector<std::string>> files = ListSeeds(path);
  if (!files.ok()) {
    std::fprintf(stderr, "replay: %s\n", files.status().ToString().c_str());
    return false;
  }
  for (const std::string& file : *files) {
    absl::StatusOr<std::string> bytes = ReadSeed(file);
    if (!bytes.ok()) {
      std::fprintf(stderr, "replay: %s\n", bytes.status().ToString().c_str());
      return false;
    }
    // Named before running, so a crash report follows the name of its seed.
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(),
                 bytes->size());
    RunOne(*bytes);
    for (int i = 0; i < mutants && !bytes->empty(); ++i) {
      RunOne(Mutant(*bytes, i));
    }
    ++*seeds;
  }
  return true;
}

int Main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  int mutants = 64;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--mutants=")) {
      if (!absl::SimpleAtoi(arg.substr(10), &mutants) || mutants < 0) {
        std::fprintf(stderr, "replay: bad %s\n", arg.c_str());
        return 2;
      }
    } else {
      paths.push_back(arg);
    }
  }
  const auto start = std::chrono::steady_clock::now();
  int64_t seeds = 0;
  for (const std::string& path : paths) {
    if (!ReplayPath(path, mutants, &seeds)) return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::fprintf(stderr, "replay: %lld seeds, %lld inputs, %.2f s\n",
               static_cast<long long>(seeds), static_cast<long long>(g_inputs),
               seconds);
  // An empty corpus would make the smoke pass without testing anything.
  if (seeds == 0) {
    std::fprintf(stderr, "replay: no seed files given\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace dmue::fuzz

int main(int argc, char** argv) { return dmue::fuzz::Main(argc, argv); }
