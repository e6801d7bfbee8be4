// Small PNG charts drawn with OpenCV, for results people would rather look
// at than read: training curves (line plots) and confusion matrices
// (annotated heat maps). Files are written with dmue/base/image_write.h
// (crash-safe PNG writes).
//
// The layout is measured from the text: margins grow to fit tick labels,
// axis labels, class names and the legend, a long title wraps onto more
// lines, column labels turn vertical when they are wider than a cell, and
// the canvas grows when the requested size cannot hold it all. Every number
// on one axis (or in one heat map) has the same format.
#ifndef DMUE_UTIL_PLOT_H_
#define DMUE_UTIL_PLOT_H_

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/base/image_write.h"  // WritePng / EncodePng, for users of the charts.

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
  int width = 900;  // at least; wider when the text needs it
  int height = 520;
};

struct HeatMap {
  std::string title;
  std::vector<std::vector<double>> values;  // rows x cols, e.g. row-normalised.
  std::vector<std::string> row_labels;      // e.g. true classes
  std::vector<std::string> col_labels;      // e.g. predicted classes
  std::string row_axis = "true";
  std::string col_axis = "predicted";
  int cell = 64;  // at least; wider when a value needs it
  // Decimals of every cell value; -1: integers when all values are whole
  // (counts), else 2 (fractions).
  int decimals = -1;
};

// A text drawn on a chart and its box in pixels, [left, right) x [top,
// bottom); rotated texts have their rotated box.
struct TextBox {
  std::string text;
  int left = 0, top = 0, right = 0, bottom = 0;
};

struct Chart {
  cv::Mat image;  // BGR
  std::vector<TextBox> texts;
};

// Text helpers for charts drawn elsewhere (evaluation/charts.h), in this
// file's typeface (FONT_HERSHEY_SIMPLEX at `scale`). The box of the text:
cv::Size TextSize(const std::string& text, double scale, int thickness = 1);
// Draws `text` with the top-left of its box at `at`; returns the box.
TextBox PutText(cv::Mat& image, const std::string& text, cv::Point at, double scale, int thickness = 1,
                cv::Scalar color = cv::Scalar(40, 40, 40));
// The same reading bottom to top (a y-axis label); `at` is the top-left of
// the rotated box.
TextBox PutVerticalText(cv::Mat& image, const std::string& text, cv::Point at, double scale, int thickness = 1,
                        cv::Scalar color = cv::Scalar(40, 40, 40));

absl::StatusOr<Chart> DrawLinePlot(const LinePlot& plot);
absl::StatusOr<Chart> DrawHeatMap(const HeatMap& map);

absl::Status WriteLinePlot(const std::string& path, const LinePlot& plot);
absl::Status WriteHeatMap(const std::string& path, const HeatMap& map);

}  // namespace dmue

#endif  // DMUE_UTIL_PLOT_H_
