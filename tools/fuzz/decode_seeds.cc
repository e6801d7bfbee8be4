// Writes the raw bytes of every committed seed into one flat directory, the
// form libFuzzer takes as its corpus (run_fuzzers.sh calls it).
//
//   decode_seeds <output dir> <seed file or directory>...
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tools/fuzz/seed_file.h"

namespace dmue::fuzz {
namespace {

bool WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out.flush());
}

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <output dir> <seed path>...\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path out_dir = argv[1];
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  int written = 0;
  for (int i = 2; i < argc; ++i) {
    absl::StatusOr<std::vector<std::string>> files = ListSeeds(argv[i]);
    if (!files.ok()) {
      std::fprintf(stderr, "%s\n", files.status().ToString().c_str());
      return 1;
    }
    for (const std::string& file : *files) {
      absl::StatusOr<std::string> bytes = ReadSeed(file);
      const std::string target = (out_dir / fs::path(file).stem()).string();
      if (!bytes.ok() || !WriteBytes(target, *bytes)) {
        std::fprintf(stderr, "cannot decode %s into %s\n", file.c_str(),
                     target.c_str());
        return 1;
      }
      ++written;
    }
  }
  std::printf("%d seeds\n", written);
  return 0;
}

}  // namespace
}  // namespace dmue::fuzz

int main(int argc, char** argv) { return dmue::fuzz::Main(argc, argv); }
