// Seed files of the committed fuzz corpus, which holds text only (the
// repository carries no binary files):
//   *.hex  hex digits, any whitespace between them; '#' starts a comment that
//          runs to the end of the line (used for a one-line description).
//   other  the file's bytes as they are (text formats: label lists, csv), and
//          libFuzzer's own crash-*/timeout-* files, which are raw.
#ifndef TOOLS_FUZZ_SEED_FILE_H_
#define TOOLS_FUZZ_SEED_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue::fuzz {

// Decodes the text of a .hex seed. Errors give the offending line.
absl::StatusOr<std::string> DecodeHex(absl::string_view text);

// The input bytes a seed file stands for (decoded if its name ends in .hex).
absl::StatusOr<std::string> ReadSeed(const std::string& path);

// `path` itself if it is a file, else every regular file below it, sorted so
// runs are reproducible. Errors when `path` does not exist.
absl::StatusOr<std::vector<std::string>> ListSeeds(const std::string& path);

}  // namespace dmue::fuzz

#endif  // TOOLS_FUZZ_SEED_FILE_H_
