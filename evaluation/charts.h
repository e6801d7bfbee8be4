// Evaluation pictures drawn with OpenCV (torch-free): the reliability
// diagram, distribution bar charts, contact-sheet tiles of audited samples,
// drawn as BGR images (written with dmue/base/image_write.h).
#ifndef EVALUATION_CHARTS_H_
#define EVALUATION_CHARTS_H_

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/metrics/metrics.h"

namespace dmue::evaluation {

// Reliability diagram: per-bin accuracy bars against the diagonal, the gap to
// each bin's mean confidence shaded, a count histogram below, ECE in the title.
cv::Mat DrawReliabilityDiagram(const Calibration& calibration, const std::string& title);
absl::Status WriteReliabilityDiagram(const std::string& path, const Calibration& calibration,
                                     const std::string& title);

// Horizontal bars of `values` (in [0, 1]) inside `area`, one row per class with
// its name; row `highlight` (e.g. the given label) is marked. When
// `reference` is non-empty a thin second bar per row shows it (e.g. votes).
void DrawDistributionBars(cv::Mat& canvas, const cv::Rect& area, const std::vector<double>& values,
                          const std::vector<std::string>& names, int highlight,
                          const std::vector<double>& reference = {});

// One audited sample: its image, two text lines and its distribution bars.
struct SheetItem {
  cv::Mat rgb;  // CV_8UC3 RGB (or CV_8UC1), any size
  std::string title;
  std::string subtitle;
  std::vector<double> bars;       // e.g. the mined latent distribution
  std::vector<double> reference;  // e.g. human votes (optional)
  int highlight = -1;             // e.g. the given label
};

// A tile (BGR) for one item.
cv::Mat DrawSheetTile(const SheetItem& item, const std::vector<std::string>& names);
// Tiles in a grid with `columns` columns and a legend line (BGR).
cv::Mat DrawContactSheet(const std::vector<SheetItem>& items, const std::vector<std::string>& names,
                         int columns, const std::string& title);

}  // namespace dmue::evaluation

#endif  // EVALUATION_CHARTS_H_
