#include "dmue/util/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dmue {
namespace {

const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214},
                               {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {127, 127, 127}};

absl::Status WritePng(const std::string& path, const cv::Mat& image) {
  const std::string tmp = path + ".tmp.png";
  try {
    if (!cv::imwrite(tmp, image)) {
      return absl::InternalError(absl::StrCat("cannot write image '", tmp, "'"));
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("cannot write image '", path, "': ", e.what()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename '", tmp, "' to '", path, "'"));
  }
  return absl::OkStatus();
}

void Text(cv::Mat& image, const std::string& text, cv::Point at, double scale = 0.45,
          cv::Scalar color = {40, 40, 40}) {
  cv::putText(image, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, color, 1, cv::LINE_AA);
}

std::string Tick(double v) {
  if (v != 0 && (std::abs(v) < 1e-2 || std::abs(v) >= 1e4)) return absl::StrFormat("%.1e", v);
  return absl::StrFormat("%.3g", v);
}

}  // namespace

absl::Status WriteLinePlot(const std::string& path, const LinePlot& plot) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : plot.series) {
    if (s.x.size() != s.y.size()) {
      return absl::InvalidArgumentError(absl::StrCat("series '", s.name, "' has ", s.x.size(),
                                                     " x values but ", s.y.size(), " y values"));
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;

  cv::Mat image(plot.height, plot.width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 80, right = 190, top = 40, bottom = 60;
  const int w = plot.width - left - right, h = plot.height - top - bottom;
  auto px = [&](double x, double y) {
    return cv::Point(left + static_cast<int>((x - x0) / (x1 - x0) * w),
                     top + h - static_cast<int>((y - y0) / (y1 - y0) * h));
  };
  for (int i = 0; i <= 5; ++i) {
    const double yv = y0 + (y1 - y0) * i / 5, xv = x0 + (x1 - x0) * i / 5;
    cv::line(image, px(x0, yv), px(x1, yv), {230, 230, 230}, 1);
    Text(image, Tick(yv), px(x0, yv) + cv::Point(-70, 5));
    Text(image, Tick(xv), px(xv, y0) + cv::Point(-10, 20));
  }
  cv::rectangle(image, {left, top}, {left + w, top + h}, {60, 60, 60}, 1);
  Text(image, plot.title, {left, 25}, 0.6);
  Text(image, plot.x_label, {left + w / 2 - 30, plot.height - 15});
  Text(image, plot.y_label, {10, top - 10});
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const Series& s = plot.series[k];
    const cv::Scalar color = kPalette[k % (sizeof(kPalette) / sizeof(kPalette[0]))];
    for (size_t i = 1; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i - 1]) || !std::isfinite(s.y[i])) continue;
      cv::line(image, px(s.x[i - 1], s.y[i - 1]), px(s.x[i], s.y[i]), color, 2, cv::LINE_AA);
    }
    if (s.x.size() == 1 && std::isfinite(s.y[0])) cv::circle(image, px(s.x[0], s.y[0]), 3, color, -1);
    const int ly = top + 20 + static_cast<int>(k) * 22;
    cv::line(image, {left + w + 15, ly - 4}, {left + w + 40, ly - 4}, color, 3);
    Text(image, s.name, {left + w + 45, ly});
  }
  return WritePng(path, image);
}

absl::Status WriteHeatMap(const std::string& path, const HeatMap& map) {
  const int rows = static_cast<int>(map.values.size());
  if (rows == 0) return absl::InvalidArgumentError("heat map has no rows");
  const int cols = static_cast<int>(map.values[0].size());
  for (const auto& row : map.values) {
    if (static_cast<int>(row.size()) != cols) {
      return absl::InvalidArgumentError("heat map rows differ in length");
    }
  }
  double vmax = 0;
  for (const auto& row : map.values) {
    for (double v : row) vmax = std::max(vmax, std::isfinite(v) ? v : 0.0);
  }
  if (vmax <= 0) vmax = 1;
  const int left = 130, top = 70, c = map.cell;
  cv::Mat image(top + rows * c + 60, left + cols * c + 20, CV_8UC3, cv::Scalar(255, 255, 255));
  Text(image, map.title, {10, 25}, 0.6);
  Text(image, map.col_axis, {left + cols * c / 2 - 30, 50});
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < cols; ++k) {
      const double v = map.values[r][k];
      const double t = std::isfinite(v) ? std::clamp(v / vmax, 0.0, 1.0) : 0.0;
      // White -> dark blue.
      const cv::Scalar color(255 - 100 * t, 255 - 200 * t, 255 - 230 * t);
      cv::rectangle(image, {left + k * c, top + r * c}, {left + (k + 1) * c - 1, top + (r + 1) * c - 1},
                    color, cv::FILLED);
      Text(image, Tick(v), {left + k * c + 8, top + r * c + c / 2 + 5}, 0.42,
           t > 0.55 ? cv::Scalar(255, 255, 255) : cv::Scalar(30, 30, 30));
    }
    if (r < static_cast<int>(map.row_labels.size())) {
      Text(image, map.row_labels[r].substr(0, 14), {8, top + r * c + c / 2 + 5});
    }
  }
  for (int k = 0; k < cols && k < static_cast<int>(map.col_labels.size()); ++k) {
    Text(image, map.col_labels[k].substr(0, 7), {left + k * c + 4, top + rows * c + 20}, 0.4);
  }
  Text(image, "rows: " + map.row_axis, {8, top + rows * c + 45});
  return WritePng(path, image);
}

}  // namespace dmue
