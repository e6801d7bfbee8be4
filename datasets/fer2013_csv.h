// FER2013's pixel CSV (fer2013.csv: `emotion,pixels,Usage`, 48x48 grey images
// as 2304 space-separated values) as images + label entries. Usage maps to
// the split: Training -> train, PublicTest -> val, PrivateTest -> test; the
// path of row r is "<r>.png" (the row index in the file, header excluded).
#ifndef DATASETS_FER2013_CSV_H_
#define DATASETS_FER2013_CSV_H_

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datasets/label_list.h"

namespace dmue::datasets {

struct Fer2013Csv {
  std::vector<LabelEntry> entries;
  std::vector<cv::Mat> images;  // CV_8UC1 48x48, parallel to entries
};

// `only_split` keeps one split ("" = all). Malformed rows are errors naming
// `source` and the line.
absl::StatusOr<Fer2013Csv> ParseFer2013Csv(absl::string_view text, absl::string_view source,
                                           const std::string& only_split = "");
absl::StatusOr<Fer2013Csv> ReadFer2013Csv(const std::string& path, const std::string& only_split = "");

}  // namespace dmue::datasets

#endif  // DATASETS_FER2013_CSV_H_
