#include "evaluation/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dmue/base/image_write.h"
#include "dmue/util/plot.h"

namespace dmue::evaluation {
namespace {

const cv::Scalar kBar(180, 119, 31);       // blue (BGR)
const cv::Scalar kGapShade(80, 80, 230);   // red
const cv::Scalar kHighlight(40, 160, 44);  // green
const cv::Scalar kReference(14, 127, 255); // orange
const cv::Scalar kInk(40, 40, 40);

void Text(cv::Mat& image, const std::string& text, cv::Point at, double scale = 0.45,
          cv::Scalar color = kInk) {
  cv::putText(image, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, color, 1, cv::LINE_AA);
}

}  // namespace

namespace {

// Reliability diagram geometry, measured from its text so nothing is clipped
// or crowded (the title, the vertical y label and the tick labels).
struct ReliabilityLayout {
  int width = 0, height = 0;
  int left = 0, top = 0;  // the diagram's frame
  int plot_w = 520, plot_h = 400, hist_h = 90;
  int x_label_top = 0, hist_top = 0, caption_top = 0;
};

constexpr double kTitleScale = 0.6, kLabelScale = 0.5, kTickScale = 0.45;
constexpr int kPad = 14, kGap = 8;

ReliabilityLayout LayOutReliability(const std::string& heading) {
  ReliabilityLayout l;
  const cv::Size title = TextSize(heading, kTitleScale);
  const cv::Size tick = TextSize("0.0", kTickScale);
  const int label_h = TextSize("(Ag)", kLabelScale).height;
  l.left = kPad + label_h + kGap + tick.width + kGap;
  l.top = kPad + title.height + kGap + tick.height / 2;
  l.width = std::max(l.left + l.plot_w + tick.width / 2 + kPad, title.width + 2 * kPad);
  l.x_label_top = l.top + l.plot_h + kGap + tick.height + kGap / 2;
  l.hist_top = l.x_label_top + label_h + 2 * kGap;
  l.caption_top = l.hist_top + l.hist_h + kGap;
  l.height = l.caption_top + label_h + kPad;
  return l;
}

void DrawReliabilityBins(cv::Mat& image, const Calibration& calibration, const ReliabilityLayout& l) {
  auto x_of = [&](double v) { return l.left + int(std::lround(v * l.plot_w)); };
  auto y_of = [&](double v) { return l.top + l.plot_h - int(std::lround(v * l.plot_h)); };
  int64_t max_count = 1;
  for (const ReliabilityBin& bin : calibration.bins) max_count = std::max(max_count, bin.count);
  for (const ReliabilityBin& bin : calibration.bins) {
    const int x0 = x_of(bin.lower) + 1, x1 = x_of(bin.upper) - 1;
    if (bin.count > 0) {
      cv::rectangle(image, {x0, y_of(bin.accuracy)}, {x1, y_of(0)}, kBar, cv::FILLED);
      // Gap between accuracy and mean confidence.
      const int ya = y_of(bin.accuracy), yc = y_of(bin.mean_confidence);
      cv::Mat roi = image(cv::Rect(cv::Point(x0, std::min(ya, yc)), cv::Point(x1 + 1, std::max(ya, yc) + 1)));
      cv::Mat overlay(roi.size(), roi.type(), kGapShade);
      cv::addWeighted(overlay, 0.45, roi, 0.55, 0, roi);
      cv::line(image, {x0, yc}, {x1, yc}, kGapShade, 2);
    }
    const int h = int(std::lround(double(bin.count) / double(max_count) * l.hist_h));
    cv::rectangle(image, {x0, l.hist_top + l.hist_h - h}, {x1, l.hist_top + l.hist_h}, {150, 150, 150}, cv::FILLED);
  }
  cv::line(image, {x_of(0), y_of(0)}, {x_of(1), y_of(1)}, {90, 90, 90}, 1, cv::LINE_AA);
  cv::rectangle(image, {x_of(0), y_of(1)}, {x_of(1), y_of(0)}, {60, 60, 60}, 1);
  cv::rectangle(image, {x_of(0), l.hist_top}, {x_of(1), l.hist_top + l.hist_h}, {60, 60, 60}, 1);
}

void DrawReliabilityText(cv::Mat& image, const std::string& heading, int64_t max_count,
                         const ReliabilityLayout& l) {
  PutText(image, heading, {(l.width - TextSize(heading, kTitleScale).width) / 2, kPad}, kTitleScale);
  for (int i = 0; i <= 5; ++i) {
    const double v = i / 5.0;
    const int x = l.left + int(std::lround(v * l.plot_w)), y = l.top + l.plot_h - int(std::lround(v * l.plot_h));
    cv::line(image, {l.left, y}, {l.left + l.plot_w, y}, {232, 232, 232}, 1);
    const std::string tick = absl::StrFormat("%.1f", v);
    const cv::Size size = TextSize(tick, kTickScale);
    PutText(image, tick, {l.left - kGap - size.width, y - size.height / 2}, kTickScale);
    PutText(image, tick, {x - size.width / 2, l.top + l.plot_h + kGap}, kTickScale);
  }
  const std::string y_label = "accuracy", x_label = "confidence (top-1 probability)";
  PutVerticalText(image, y_label, {kPad, l.top + (l.plot_h - TextSize(y_label, kLabelScale).width) / 2},
                  kLabelScale);
  PutText(image, x_label, {l.left + (l.plot_w - TextSize(x_label, kLabelScale).width) / 2, l.x_label_top},
          kLabelScale);
  PutText(image, absl::StrCat("samples per bin (max ", max_count, ")"), {l.left, l.caption_top}, kLabelScale);
  // Legend inside the frame's top-left corner, where bars are lowest.
  const int swatch_h = TextSize("(Ag)", kLabelScale).height;
  cv::rectangle(image, {l.left + 10, l.top + 10}, {l.left + 25, l.top + 10 + swatch_h - 4}, kBar, cv::FILLED);
  PutText(image, "accuracy", {l.left + 32, l.top + 8}, kLabelScale);
  const int second = l.top + 14 + swatch_h;
  cv::rectangle(image, {l.left + 10, second + 2}, {l.left + 25, second + swatch_h - 2}, kGapShade, cv::FILLED);
  PutText(image, "gap to mean confidence", {l.left + 32, second}, kLabelScale);
}

}  // namespace

cv::Mat DrawReliabilityDiagram(const Calibration& calibration, const std::string& title) {
  const std::string heading = absl::StrFormat("%s (ECE %.4f, MCE %.4f, n=%d)", title, calibration.ece,
                                              calibration.mce, calibration.count);
  const ReliabilityLayout layout = LayOutReliability(heading);
  cv::Mat image(layout.height, layout.width, CV_8UC3, cv::Scalar(255, 255, 255));
  DrawReliabilityBins(image, calibration, layout);
  int64_t max_count = 1;
  for (const ReliabilityBin& bin : calibration.bins) max_count = std::max(max_count, bin.count);
  DrawReliabilityText(image, heading, max_count, layout);
  return image;
}

absl::Status WriteReliabilityDiagram(const std::string& path, const Calibration& calibration,
                                     const std::string& title) {
  return WritePng(path, DrawReliabilityDiagram(calibration, title));
}

void DrawDistributionBars(cv::Mat& canvas, const cv::Rect& area, const std::vector<double>& values,
                          const std::vector<std::string>& names, int highlight,
                          const std::vector<double>& reference) {
  const int rows = int(values.size());
  if (rows == 0 || area.height <= 0) return;
  const int row_h = std::max(area.height / rows, 4);
  // As wide as the longest name ("happiness", not "happine"), up to half the area.
  int label_w = 0;
  for (int r = 0; r < rows; ++r) {
    label_w = std::max(label_w, TextSize(r < int(names.size()) ? names[r] : std::to_string(r), 0.34).width + 5);
  }
  label_w = std::min(label_w, area.width / 2);
  const int value_w = 34;
  const int bar_w = std::max(area.width - label_w - value_w, 10);
  for (int r = 0; r < rows; ++r) {
    const int y = area.y + r * row_h;
    const std::string name = r < int(names.size()) ? names[r] : std::to_string(r);
    Text(canvas, name, {area.x, y + row_h - 3}, 0.34, r == highlight ? kHighlight : kInk);
    const double v = std::clamp(std::isfinite(values[r]) ? values[r] : 0.0, 0.0, 1.0);
    const int x0 = area.x + label_w;
    cv::rectangle(canvas, {x0, y + 1}, {x0 + bar_w, y + row_h - 2}, {238, 238, 238}, cv::FILLED);
    const int bar_bottom = reference.empty() ? y + row_h - 2 : y + row_h - 5;
    if (v > 0) {
      cv::rectangle(canvas, {x0, y + 1}, {x0 + int(std::lround(v * bar_w)), bar_bottom},
                    r == highlight ? kHighlight : kBar, cv::FILLED);
    }
    if (r < int(reference.size())) {
      const double rv = std::clamp(reference[r], 0.0, 1.0);
      if (rv > 0) {
        cv::rectangle(canvas, {x0, y + row_h - 4}, {x0 + int(std::lround(rv * bar_w)), y + row_h - 2},
                      kReference, cv::FILLED);
      }
    }
    Text(canvas, absl::StrFormat("%.2f", v), {x0 + bar_w + 3, y + row_h - 3}, 0.32);
  }
}

cv::Mat DrawSheetTile(const SheetItem& item, const std::vector<std::string>& names) {
  const int width = 230, image_side = 112, text_h = 36;
  const int rows = int(item.bars.size());
  const int bars_h = std::max(rows, 1) * 13;
  cv::Mat tile(image_side + text_h + bars_h + 10, width, CV_8UC3, cv::Scalar(255, 255, 255));
  if (!item.rgb.empty()) {
    cv::Mat bgr;
    if (item.rgb.channels() == 1) {
      cv::cvtColor(item.rgb, bgr, cv::COLOR_GRAY2BGR);
    } else {
      cv::cvtColor(item.rgb, bgr, cv::COLOR_RGB2BGR);
    }
    const double scale = double(image_side) / std::max(bgr.rows, bgr.cols);
    cv::Mat resized;
    cv::resize(bgr, resized, cv::Size(std::max(1, int(bgr.cols * scale)), std::max(1, int(bgr.rows * scale))), 0, 0,
               scale > 1 ? cv::INTER_NEAREST : cv::INTER_AREA);
    const int x = (width - resized.cols) / 2;
    resized.copyTo(tile(cv::Rect(x, 0, resized.cols, resized.rows)));
  }
  Text(tile, item.title.substr(0, 34), {4, image_side + 14}, 0.38);
  Text(tile, item.subtitle.substr(0, 34), {4, image_side + 30}, 0.38);
  DrawDistributionBars(tile, cv::Rect(4, image_side + text_h, width - 8, bars_h), item.bars, names,
                       item.highlight, item.reference);
  cv::rectangle(tile, {0, 0}, {tile.cols - 1, tile.rows - 1}, {200, 200, 200}, 1);
  return tile;
}

cv::Mat DrawContactSheet(const std::vector<SheetItem>& items, const std::vector<std::string>& names,
                         int columns, const std::string& title) {
  columns = std::max(1, columns);
  std::vector<cv::Mat> tiles;
  int tile_w = 1, tile_h = 1;
  for (const SheetItem& item : items) {
    tiles.push_back(DrawSheetTile(item, names));
    tile_w = std::max(tile_w, tiles.back().cols);
    tile_h = std::max(tile_h, tiles.back().rows);
  }
  const int header = 44;
  const int cols = std::min<int>(columns, std::max<int>(1, int(tiles.size())));
  const int rows = (int(tiles.size()) + cols - 1) / cols;
  cv::Mat sheet(header + std::max(rows, 1) * (tile_h + 4), cols * (tile_w + 4) + 4, CV_8UC3,
                cv::Scalar(255, 255, 255));
  Text(sheet, title, {6, 18}, 0.5);
  cv::rectangle(sheet, {6, 26}, {18, 36}, kBar, cv::FILLED);
  Text(sheet, "mined latent distribution", {22, 36}, 0.38);
  cv::rectangle(sheet, {210, 26}, {222, 36}, kHighlight, cv::FILLED);
  Text(sheet, "given label", {226, 36}, 0.38);
  cv::rectangle(sheet, {320, 30}, {332, 34}, kReference, cv::FILLED);
  Text(sheet, "human votes", {336, 36}, 0.38);
  for (size_t i = 0; i < tiles.size(); ++i) {
    const int r = int(i) / cols, c = int(i) % cols;
    tiles[i].copyTo(sheet(cv::Rect(4 + c * (tile_w + 4), header + r * (tile_h + 4), tiles[i].cols, tiles[i].rows)));
  }
  return sheet;
}

}  // namespace dmue::evaluation
