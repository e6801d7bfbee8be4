// Fuzz target: the label-list parser (datasets/label_list.h) in every
// ListFormat and FERPlus label mode, then the writer and parser again on what
// was accepted (lists are rewritten in REFERENCE format by the noise tools).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datasets/label_list.h"

namespace dmue::fuzz {
namespace {

using ::dmue::datasets::LabelList;
using ::dmue::datasets::ListFormat;
using ::dmue::datasets::ParseOptions;

constexpr ListFormat kFormats[] = {
    ListFormat::kReference, ListFormat::kRafDb,      ListFormat::kFerPlus,
    ListFormat::kFolder,    ListFormat::kFer2013Csv,
};

void Rewrite(const LabelList& list) {
  for (const datasets::LabelEntry& entry : list.entries) {
    (void)datasets::LmdbKey(entry);
  }
  (void)datasets::ClassCounts(list.entries, 8);
  for (const bool with_distribution : {false, true}) {
    const std::string text =
        datasets::FormatLabelList(list.entries, with_distribution);
    (void)datasets::ParseLabelList(text, ListFormat::kReference, "rewritten");
  }
}

void Parse(absl::string_view text, ListFormat format,
           const ParseOptions& options) {
  absl::StatusOr<LabelList> list =
      datasets::ParseLabelList(text, format, "fuzz", options);
  if (list.ok()) Rewrite(*list);
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using dmue::datasets::FerPlusLabelMode;
  using dmue::datasets::ListFormat;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  dmue::datasets::ParseOptions plain;
  dmue::datasets::ParseOptions strict;
  strict.only_split = "test";
  strict.num_classes = 7;
  strict.max_lines = 64;
  for (const ListFormat format : dmue::fuzz::kFormats) {
    dmue::fuzz::Parse(text, format, plain);
    dmue::fuzz::Parse(text, format, strict);
  }
  for (const FerPlusLabelMode mode :
       {FerPlusLabelMode::kMajority, FerPlusLabelMode::kPlurality,
        FerPlusLabelMode::kDistribution}) {
    dmue::datasets::ParseOptions ferplus;
    ferplus.ferplus_mode = mode;
    ferplus.keep_distribution = true;
    dmue::fuzz::Parse(text, ListFormat::kFerPlus, ferplus);
  }
  return 0;
}
