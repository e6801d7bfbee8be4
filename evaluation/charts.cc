#include "evaluation/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dmue::evaluation {
namespace {

const cv::Scalar kBar(180, 119, 31);       // blue (BGR)
const cv::Scalar kGap(80, 80, 230);        // red
const cv::Scalar kHighlight(40, 160, 44);  // green
const cv::Scalar kReference(14, 127, 255); // orange
const cv::Scalar kInk(40, 40, 40);

void Text(cv::Mat& image, const std::string& text, cv::Point at, double scale = 0.45,
          cv::Scalar color = kInk) {
  cv::putText(image, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, color, 1, cv::LINE_AA);
}

}  // namespace

cv::Mat DrawReliabilityDiagram(const Calibration& calibration, const std::string& title) {
  const int width = 640, height = 640;
  const int left = 70, right = 30, top = 50, plot_h = 400, hist_top = top + plot_h + 40, hist_h = 90;
  const int plot_w = width - left - right;
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  Text(image, absl::StrFormat("%s  (ECE %.4f, MCE %.4f, n=%d)", title, calibration.ece, calibration.mce,
                              calibration.count),
       {10, 25}, 0.5);
  auto x_of = [&](double v) { return left + int(std::lround(v * plot_w)); };
  auto y_of = [&](double v) { return top + plot_h - int(std::lround(v * plot_h)); };
  for (int i = 0; i <= 5; ++i) {
    const double v = i / 5.0;
    cv::line(image, {x_of(0), y_of(v)}, {x_of(1), y_of(v)}, {232, 232, 232}, 1);
    Text(image, absl::StrFormat("%.1f", v), {left - 35, y_of(v) + 5}, 0.4);
    Text(image, absl::StrFormat("%.1f", v), {x_of(v) - 10, top + plot_h + 18}, 0.4);
  }
  int64_t max_count = 1;
  for (const ReliabilityBin& bin : calibration.bins) max_count = std::max(max_count, bin.count);
  for (const ReliabilityBin& bin : calibration.bins) {
    const int x0 = x_of(bin.lower) + 1, x1 = x_of(bin.upper) - 1;
    if (bin.count > 0) {
      cv::rectangle(image, {x0, y_of(bin.accuracy)}, {x1, y_of(0)}, kBar, cv::FILLED);
      // Gap between accuracy and mean confidence.
      const int ya = y_of(bin.accuracy), yc = y_of(bin.mean_confidence);
      cv::Mat roi = image(cv::Rect(cv::Point(x0, std::min(ya, yc)), cv::Point(x1 + 1, std::max(ya, yc) + 1)));
      cv::Mat overlay(roi.size(), roi.type(), kGap);
      cv::addWeighted(overlay, 0.45, roi, 0.55, 0, roi);
      cv::line(image, {x0, yc}, {x1, yc}, kGap, 2);
    }
    const int h = int(std::lround(double(bin.count) / double(max_count) * hist_h));
    cv::rectangle(image, {x0, hist_top + hist_h - h}, {x1, hist_top + hist_h}, {150, 150, 150}, cv::FILLED);
  }
  cv::line(image, {x_of(0), y_of(0)}, {x_of(1), y_of(1)}, {90, 90, 90}, 1, cv::LINE_AA);
  cv::rectangle(image, {x_of(0), y_of(1)}, {x_of(1), y_of(0)}, {60, 60, 60}, 1);
  cv::rectangle(image, {x_of(0), hist_top}, {x_of(1), hist_top + hist_h}, {60, 60, 60}, 1);
  Text(image, "accuracy", {5, top - 10}, 0.45);
  Text(image, "confidence (top-1 probability)", {left + plot_w / 2 - 120, top + plot_h + 34}, 0.45);
  Text(image, absl::StrCat("samples per bin (max ", max_count, ")"), {left, hist_top + hist_h + 22}, 0.42);
  cv::rectangle(image, {left + 10, top + 10}, {left + 25, top + 22}, kBar, cv::FILLED);
  Text(image, "accuracy", {left + 32, top + 21}, 0.4);
  cv::rectangle(image, {left + 10, top + 30}, {left + 25, top + 42}, kGap, cv::FILLED);
  Text(image, "gap to mean confidence", {left + 32, top + 41}, 0.4);
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
  const int label_w = 58, value_w = 34;
  const int bar_w = std::max(area.width - label_w - value_w, 10);
  for (int r = 0; r < rows; ++r) {
    const int y = area.y + r * row_h;
    const std::string name = r < int(names.size()) ? names[r].substr(0, 7) : std::to_string(r);
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

absl::StatusOr<std::string> EncodePng(const cv::Mat& bgr) {
  std::vector<uchar> buffer;
  try {
    if (!cv::imencode(".png", bgr, buffer)) return absl::InternalError("PNG encoding failed");
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("PNG encoding failed: ", e.what()));
  }
  return std::string(buffer.begin(), buffer.end());
}

absl::Status WritePng(const std::string& path, const cv::Mat& bgr) {
  absl::StatusOr<std::string> png = EncodePng(bgr);
  if (!png.ok()) return absl::InternalError(absl::StrCat(path, ": ", png.status().message()));
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write image '", tmp, "'"));
  const bool ok = std::fwrite(png->data(), 1, png->size(), f) == png->size();
  if (std::fclose(f) != 0 || !ok) return absl::InternalError(absl::StrCat("cannot write image '", tmp, "'"));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename '", tmp, "' to '", path, "'"));
  }
  return absl::OkStatus();
}

std::string Base64Encode(absl::string_view bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace dmue::evaluation
