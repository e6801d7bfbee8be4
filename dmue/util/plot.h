// Small PNG charts drawn with OpenCV, for results people would rather look
// at than read: training curves (line plots) and confusion matrices
// (annotated heat maps). Files are written atomically (temp + rename).
#ifndef DMUE_UTIL_PLOT_H_
#define DMUE_UTIL_PLOT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace dmue {

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  int width = 900;
  int height = 520;
};

absl::Status WriteLinePlot(const std::string& path, const LinePlot& plot);

struct HeatMap {
  std::string title;
  std::vector<std::vector<double>> values;  // rows x cols, e.g. row-normalised.
  std::vector<std::string> row_labels;      // e.g. true classes
  std::vector<std::string> col_labels;      // e.g. predicted classes
  std::string row_axis = "true";
  std::string col_axis = "predicted";
  int cell = 64;
};

absl::Status WriteHeatMap(const std::string& path, const HeatMap& map);

}  // namespace dmue

#endif  // DMUE_UTIL_PLOT_H_
