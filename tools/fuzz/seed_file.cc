#include "tools/fuzz/seed_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dmue::fuzz {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

absl::StatusOr<std::string> DecodeHex(absl::string_view text) {
  std::string out;
  out.reserve(text.size() / 2);
  int line = 1;
  int pending = -1;  // High nibble waiting for its low one.
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
      continue;
    }
    if (IsSpace(c)) continue;
    const int digit = HexDigit(c);
    if (digit < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line, ": '", std::string(1, c), "' is not a hex digit"));
    }
    if (pending < 0) {
      pending = digit;
    } else {
      out.push_back(static_cast<char>(pending << 4 | digit));
      pending = -1;
    }
  }
  if (pending >= 0) {
    return absl::InvalidArgumentError("odd number of hex digits");
  }
  return out;
}

absl::StatusOr<std::string> ReadSeed(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!absl::EndsWith(path, ".hex")) return buffer.str();
  absl::StatusOr<std::string> bytes = DecodeHex(buffer.str());
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", bytes.status().message()));
  }
  return bytes;
}

absl::StatusOr<std::vector<std::string>> ListSeeds(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return std::vector<std::string>{path};
  if (!fs::is_directory(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  }
  std::vector<std::string> files;
  // Runfiles trees are symlink farms, hence follow_directory_symlink.
  for (fs::recursive_directory_iterator
           it(path, fs::directory_options::follow_directory_symlink, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  if (ec) return absl::InternalError(absl::StrCat(path, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace dmue::fuzz
