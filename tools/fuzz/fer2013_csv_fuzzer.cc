// Fuzz target: the FER2013 pixel csv parser (datasets/fer2013_csv.h), with
// and without a split filter (the filter skips rows after their label and
// usage are read but before their pixels are).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datasets/fer2013_csv.h"

namespace dmue::fuzz {
namespace {

// The contract the packer relies on: one 48x48 8-bit image per entry.
void Check(const datasets::Fer2013Csv& csv) {
  if (csv.images.size() != csv.entries.size()) std::abort();
  for (const cv::Mat& image : csv.images) {
    if (image.rows != 48 || image.cols != 48 || image.type() != CV_8UC1) {
      std::abort();
    }
  }
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* split : {"", "train"}) {
    absl::StatusOr<dmue::datasets::Fer2013Csv> csv =
        dmue::datasets::ParseFer2013Csv(text, "fuzz", split);
    if (csv.ok()) dmue::fuzz::Check(*csv);
  }
  return 0;
}
