#include "datasets/label_list.h"

#include "dmue/base/files.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dmue/base/status_macros.h"

namespace dmue::datasets {
namespace {

absl::Status LineError(absl::string_view source, int64_t line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", why));
}

// Splits "train_foo/bar.jpg" into ("train", "foo/bar.jpg"); no '_' -> ("", key).
void SplitKey(absl::string_view key, std::string* split, std::string* path) {
  const size_t underscore = key.find('_');
  if (underscore == absl::string_view::npos || underscore == 0) {
    split->clear();
    *path = std::string(key);
    return;
  }
  *split = std::string(key.substr(0, underscore));
  *path = std::string(key.substr(underscore + 1));
}

absl::Status CheckLabel(int label, const ParseOptions& options, absl::string_view source,
                        int64_t line) {
  if (label < 0 || (options.num_classes > 0 && label >= options.num_classes)) {
    return LineError(source, line,
                     options.num_classes > 0
                         ? absl::StrCat("label ", label, " out of range [0, ", options.num_classes, ")")
                         : absl::StrCat("negative label ", label));
  }
  return absl::OkStatus();
}

bool Keep(const LabelEntry& entry, const ParseOptions& options) {
  return options.only_split.empty() || entry.split == options.only_split;
}

absl::Status ParseReferenceLine(const std::vector<absl::string_view>& fields,
                                const ParseOptions& options, absl::string_view source,
                                int64_t line, LabelEntry* entry) {
  if (fields.size() < 2) {
    return LineError(source, line, "expected `<split>_<path> <label> [p0 ... pC-1]`");
  }
  SplitKey(fields[0], &entry->split, &entry->path);
  if (entry->split.empty()) {
    return LineError(source, line,
                     absl::StrCat("key '", fields[0], "' has no `<split>_` prefix (train_/test_)"));
  }
  if (!absl::SimpleAtoi(fields[1], &entry->label)) {
    return LineError(source, line, absl::StrCat("label '", fields[1], "' is not an integer"));
  }
  RETURN_IF_ERROR(CheckLabel(entry->label, options, source, line));
  if (fields.size() > 2) {
    double sum = 0;
    for (size_t i = 2; i < fields.size(); ++i) {
      float p;
      if (!absl::SimpleAtof(fields[i], &p) || !(p >= 0.0f && p <= 1.0f)) {
        return LineError(source, line,
                         absl::StrCat("distribution value '", fields[i], "' is not in [0, 1]"));
      }
      entry->distribution.push_back(p);
      sum += p;
    }
    if (options.num_classes > 0 && entry->distribution.size() != size_t(options.num_classes)) {
      return LineError(source, line,
                       absl::StrCat("distribution has ", entry->distribution.size(),
                                    " values, expected ", options.num_classes));
    }
    if (entry->label >= int(entry->distribution.size())) {
      return LineError(source, line, "label is outside the distribution");
    }
    if (std::abs(sum - 1.0) > 1e-3) {
      return LineError(source, line, absl::StrCat("distribution sums to ", sum, ", not 1"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseRafDbLine(const std::vector<absl::string_view>& fields,
                            const ParseOptions& options, absl::string_view source, int64_t line,
                            LabelEntry* entry) {
  if (fields.size() != 2) return LineError(source, line, "expected `<file> <label 1..7>`");
  entry->path = std::string(fields[0]);
  const size_t underscore = fields[0].find('_');
  entry->split = underscore != absl::string_view::npos && underscore > 0
                     ? std::string(fields[0].substr(0, underscore))
                     : options.default_split;
  int label;
  if (!absl::SimpleAtoi(fields[1], &label)) {
    return LineError(source, line, absl::StrCat("label '", fields[1], "' is not an integer"));
  }
  const int num_classes = options.num_classes > 0 ? options.num_classes : 7;
  if (label < 1 || label > num_classes) {
    return LineError(source, line,
                     absl::StrCat("label ", label, " out of range [1, ", num_classes, "]"));
  }
  entry->label = label - 1;
  return absl::OkStatus();
}

// Returns false (with *error set) on a malformed line; entry->label -1 = dropped.
absl::Status ParseFerPlusLine(absl::string_view text, const ParseOptions& options,
                              absl::string_view source, int64_t line, LabelEntry* entry) {
  // The face box is quoted and contains commas: `name,"(0, 0, 48, 48)",v0,...`.
  std::vector<absl::string_view> fields;
  const size_t quote = text.find('"');
  if (quote != absl::string_view::npos) {
    const size_t close = text.find('"', quote + 1);
    if (close == absl::string_view::npos) return LineError(source, line, "unterminated quote");
    absl::string_view head = text.substr(0, quote);
    absl::string_view tail = text.substr(close + 1);
    if (!absl::ConsumeSuffix(&head, ",") || !absl::ConsumePrefix(&tail, ",")) {
      return LineError(source, line, "malformed face box field");
    }
    fields = absl::StrSplit(head, ',');
    fields.push_back(text.substr(quote, close - quote + 1));
    for (absl::string_view f : absl::StrSplit(tail, ',')) fields.push_back(f);
  } else {
    fields = absl::StrSplit(text, ',');
  }
  // Accept both label.csv (name, box, 10 votes) and fer2013new.csv
  // (Usage, name, 10 votes) layouts.
  if (fields.size() != 12) {
    return LineError(source, line,
                     absl::StrCat("expected 12 comma-separated fields (name, box, 10 votes), got ",
                                  fields.size()));
  }
  absl::string_view name = absl::StripAsciiWhitespace(fields[0]);
  if (!absl::EndsWithIgnoreCase(name, ".png") && !absl::EndsWithIgnoreCase(name, ".jpg")) {
    std::swap(fields[0], fields[1]);  // fer2013new.csv: Usage first.
    name = absl::StripAsciiWhitespace(fields[0]);
  }
  int votes[10];
  int total = 0;
  for (int i = 0; i < 10; ++i) {
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[2 + i]), &votes[i]) || votes[i] < 0) {
      return LineError(source, line,
                       absl::StrCat("vote ", i, " ('", fields[2 + i], "') is not a count >= 0"));
    }
    total += votes[i];
  }
  if (total == 0) return LineError(source, line, "all 10 vote counts are 0");
  if (name.empty()) {  // fer2013new.csv rows FERPlus left without an image.
    entry->label = -1;
    return absl::OkStatus();
  }
  entry->path = std::string(name);
  entry->split = options.default_split;
  std::vector<float> distribution;
  entry->label = FerPlusLabel(votes, options.ferplus_mode, &distribution);
  if (options.keep_distribution || options.ferplus_mode == FerPlusLabelMode::kDistribution) {
    entry->distribution = std::move(distribution);
  }
  return absl::OkStatus();
}

}  // namespace

std::string LmdbKey(const LabelEntry& entry) {
  return entry.split.empty() ? entry.path : absl::StrCat(entry.split, "_", entry.path);
}

int FerPlusLabel(const int votes[10], FerPlusLabelMode mode, std::vector<float>* distribution) {
  distribution->assign(8, 0.0f);
  int emotion_total = 0;
  for (int i = 0; i < 8; ++i) emotion_total += votes[i];
  if (emotion_total > 0) {
    for (int i = 0; i < 8; ++i) (*distribution)[i] = float(votes[i]) / float(emotion_total);
  }
  switch (mode) {
    case FerPlusLabelMode::kMajority: {
      int kept[10];
      int sum = 0;
      for (int i = 0; i < 10; ++i) {
        kept[i] = votes[i] > 1 ? votes[i] : 0;
        sum += kept[i];
      }
      const int best = int(std::max_element(kept, kept + 10) - kept);
      if (sum == 0 || 2 * kept[best] <= sum) return -1;
      return best < 8 ? best : -1;
    }
    case FerPlusLabelMode::kPlurality: {
      const int best = int(std::max_element(votes, votes + 10) - votes);
      return best < 8 ? best : -1;
    }
    case FerPlusLabelMode::kDistribution: {
      if (emotion_total == 0) return -1;
      return int(std::max_element(votes, votes + 8) - votes);
    }
  }
  return -1;
}

absl::StatusOr<LabelList> ParseLabelList(absl::string_view text, ListFormat format,
                                         absl::string_view source, const ParseOptions& options) {
  if (format == ListFormat::kFolder) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": FOLDER lists are read from a directory with ReadLabelList"));
  }
  LabelList list;
  int64_t line_number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (options.max_lines > 0 && line_number > options.max_lines) break;
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    LabelEntry entry;
    absl::Status status;
    if (format == ListFormat::kFerPlus) {
      if (line_number == 1 && absl::StartsWith(line, "Usage,")) continue;  // fer2013new.csv header
      status = ParseFerPlusLine(line, options, source, line_number, &entry);
    } else {
      std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      status = format == ListFormat::kReference
                   ? ParseReferenceLine(fields, options, source, line_number, &entry)
                   : ParseRafDbLine(fields, options, source, line_number, &entry);
    }
    RETURN_IF_ERROR(status);
    if (!Keep(entry, options)) continue;
    if (entry.label < 0) {
      ++list.num_dropped;
      continue;
    }
    list.entries.push_back(std::move(entry));
  }
  return list;
}

absl::StatusOr<LabelList> ReadLabelList(const std::string& path, ListFormat format,
                                        const ParseOptions& options) {
  if (format == ListFormat::kFer2013Csv) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": FER2013 pixel csv files hold images, not a label list (use fer2013_csv.h or pack_lmdb)"));
  }
  namespace fs = std::filesystem;
  if (format == ListFormat::kFolder) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) {
      return absl::NotFoundError(absl::StrCat("image folder '", path, "' does not exist"));
    }
    std::vector<std::string> classes = options.folder_classes;
    if (classes.empty()) {
      for (const auto& child : fs::directory_iterator(path, ec)) {
        if (child.is_directory()) classes.push_back(child.path().filename().string());
      }
      std::sort(classes.begin(), classes.end());
    }
    if (classes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("image folder '", path, "' has no class sub-folders"));
    }
    LabelList list;
    for (size_t c = 0; c < classes.size(); ++c) {
      const fs::path dir = fs::path(path) / classes[c];
      if (!fs::is_directory(dir, ec)) {
        return absl::NotFoundError(absl::StrCat("class folder '", dir.string(), "' does not exist"));
      }
      std::vector<std::string> files;
      for (const auto& item : fs::recursive_directory_iterator(dir, ec)) {
        if (!item.is_regular_file()) continue;
        std::string ext = absl::AsciiStrToLower(item.path().extension().string());
        if (ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".bmp") continue;
        files.push_back(fs::relative(item.path(), path).generic_string());
      }
      std::sort(files.begin(), files.end());
      for (std::string& f : files) {
        LabelEntry entry;
        entry.path = std::move(f);
        entry.split = options.default_split;
        entry.label = int(c);
        list.entries.push_back(std::move(entry));
      }
    }
    return list;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open label list '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read label list '", path, "'"));
  return ParseLabelList(buffer.str(), format, path, options);
}

std::string FormatLabelList(const std::vector<LabelEntry>& entries, bool with_distribution) {
  std::string out;
  for (const LabelEntry& e : entries) {
    absl::StrAppend(&out, LmdbKey(e), " ", e.label);
    if (with_distribution) {
      for (float p : e.distribution) absl::StrAppend(&out, " ", p);
    }
    out.push_back('\n');
  }
  return out;
}

absl::Status WriteLabelList(const std::string& path, const std::vector<LabelEntry>& entries,
                            bool with_distribution) {
  for (const LabelEntry& e : entries) {
    if (e.path.find_first_of(" \t\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write '", e.path, "' to label list '", path, "': path has whitespace"));
    }
  }
  return WriteFileAtomically(path, FormatLabelList(entries, with_distribution));
}

std::vector<int64_t> ClassCounts(const std::vector<LabelEntry>& entries, int num_classes) {
  std::vector<int64_t> counts(std::max(num_classes, 0), 0);
  for (const LabelEntry& e : entries) {
    if (e.label >= 0 && e.label < num_classes) ++counts[e.label];
  }
  return counts;
}

absl::StatusOr<std::vector<int64_t>> InjectSymmetricLabelNoise(std::vector<LabelEntry>* entries,
                                                               double rate, int num_classes,
                                                               uint64_t seed) {
  if (!(rate >= 0.0 && rate <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("label noise rate must be in [0, 1], got ", rate));
  }
  if (num_classes < 2) {
    return absl::InvalidArgumentError(absl::StrCat("label noise needs >= 2 classes, got ", num_classes));
  }
  std::vector<int64_t> labelled;
  for (int64_t i = 0; i < int64_t(entries->size()); ++i) {
    const int label = (*entries)[i].label;
    if (label >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", i, " ('", (*entries)[i].path,
                                                     "') has label ", label, " >= num_classes ",
                                                     num_classes));
    }
    if (label >= 0) labelled.push_back(i);
  }
  std::mt19937_64 rng(seed);
  const int64_t count = std::llround(rate * double(labelled.size()));
  // Partial Fisher-Yates: the first `count` of a random permutation.
  for (int64_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<int64_t> pick(i, int64_t(labelled.size()) - 1);
    std::swap(labelled[i], labelled[pick(rng)]);
  }
  labelled.resize(count);
  std::sort(labelled.begin(), labelled.end());
  std::uniform_int_distribution<int> other(0, num_classes - 2);
  for (int64_t index : labelled) {
    LabelEntry& e = (*entries)[index];
    const int draw = other(rng);
    e.label = draw >= e.label ? draw + 1 : draw;
  }
  return labelled;
}

const std::vector<std::string>& FerPlusClassNames() {
  static const auto* names = new std::vector<std::string>{
      "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"};
  return *names;
}

const std::vector<std::string>& RafDbClassNames() {
  static const auto* names = new std::vector<std::string>{
      "surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"};
  return *names;
}

}  // namespace dmue::datasets
