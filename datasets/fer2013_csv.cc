#include "datasets/fer2013_csv.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace dmue::datasets {
namespace {

constexpr int kSide = 48;

absl::StatusOr<std::string> SplitOfUsage(absl::string_view usage) {
  if (usage == "Training") return std::string("train");
  if (usage == "PublicTest") return std::string("val");
  if (usage == "PrivateTest") return std::string("test");
  return absl::InvalidArgumentError(absl::StrCat("unknown Usage '", usage, "'"));
}

}  // namespace

absl::StatusOr<Fer2013Csv> ParseFer2013Csv(absl::string_view text, absl::string_view source,
                                           const std::string& only_split) {
  Fer2013Csv out;
  int line_number = 0;
  int64_t row = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripSuffix(line, "\r");
    if (line.empty()) continue;
    if (line_number == 1 && absl::StartsWith(line, "emotion")) continue;  // header
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": ", why));
    };
    std::vector<absl::string_view> cols = absl::StrSplit(line, ',');
    if (cols.size() != 3) return fail("expected 3 columns: emotion,pixels,Usage");
    int label;
    if (!absl::SimpleAtoi(cols[0], &label) || label < 0 || label > 6) return fail("emotion must be 0..6");
    absl::StatusOr<std::string> split = SplitOfUsage(cols[2]);
    if (!split.ok()) return fail(split.status().message());
    const int64_t this_row = row++;
    if (!only_split.empty() && *split != only_split) continue;
    cv::Mat image(kSide, kSide, CV_8UC1);
    int count = 0;
    for (absl::string_view value : absl::StrSplit(cols[1], ' ', absl::SkipEmpty())) {
      int v;
      if (count >= kSide * kSide || !absl::SimpleAtoi(value, &v) || v < 0 || v > 255) {
        return fail("pixels must be 2304 values in 0..255");
      }
      image.data[count++] = static_cast<uint8_t>(v);
    }
    if (count != kSide * kSide) return fail(absl::StrCat("pixels has ", count, " values, expected 2304"));
    LabelEntry entry;
    entry.split = *split;
    entry.path = absl::StrCat(this_row, ".png");
    entry.label = label;
    out.entries.push_back(std::move(entry));
    out.images.push_back(image);
  }
  return out;
}

absl::StatusOr<Fer2013Csv> ReadFer2013Csv(const std::string& path, const std::string& only_split) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open FER2013 csv '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseFer2013Csv(buffer.str(), path, only_split);
}

}  // namespace dmue::datasets
