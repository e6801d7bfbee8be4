#include "dmue/util/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "dmue/base/status_macros.h"

namespace dmue {
namespace {

const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214},
                               {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {127, 127, 127}};
const cv::Scalar kInk(40, 40, 40);
const cv::Scalar kWhite(255, 255, 255);
constexpr int kFace = cv::FONT_HERSHEY_SIMPLEX;
constexpr int kPad = 14;     // canvas edge to any ink
constexpr int kGap = 8;      // between neighbouring texts, and text to axes
constexpr int kSwatch = 28;  // legend line sample

struct Font {
  double scale;
  int thickness;
};
// Readable at the PNG's pixel size and when shrunk into a paper column:
// labels about 13 px high, the title larger and bold.
constexpr Font kTitleFont{0.75, 2};
constexpr Font kLabelFont{0.6, 1};
constexpr Font kTickFont{0.55, 1};

struct Extent {
  int width = 0, ascent = 0, descent = 0;
  int height() const { return ascent + descent; }
};

Extent Measure(const std::string& text, double scale, int thickness) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, kFace, scale, thickness, &baseline);
  // Brackets rise above the cap height getTextSize reports.
  return {size.width, size.height + int(std::ceil(5 * scale)), baseline};
}
Extent Measure(const std::string& text, Font font) { return Measure(text, font.scale, font.thickness); }

int LineHeight(Font font) { return Measure("(Ag)", font).height(); }

// Draws texts and remembers their boxes, so tests can check nothing is
// clipped or overlaps.
class Canvas {
 public:
  Canvas(int width, int height) : image_(height, width, CV_8UC3, kWhite) {}
  cv::Mat& image() { return image_; }

  // The top-left of the text's box at `at`.
  void Text(const std::string& text, cv::Point at, Font font, cv::Scalar color = kInk) {
    texts_.push_back(PutText(image_, text, at, font.scale, font.thickness, color));
  }
  void CenteredText(const std::string& text, cv::Point center, Font font, cv::Scalar color = kInk) {
    const Extent e = Measure(text, font);
    Text(text, {center.x - e.width / 2, center.y - e.height() / 2}, font, color);
  }
  // Reading bottom to top; `at` is the top-left of the rotated box.
  void VerticalText(const std::string& text, cv::Point at, Font font) {
    texts_.push_back(PutVerticalText(image_, text, at, font.scale, font.thickness));
  }
  Chart Finish() { return {image_, texts_}; }

 private:
  cv::Mat image_;
  std::vector<TextBox> texts_;
};

// Words of `text` on lines at most `width` wide (a longer word gets a line).
std::vector<std::string> Wrap(const std::string& text, Font font, int width) {
  std::vector<std::string> lines;
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    const std::string longer = line.empty() ? std::string(word) : absl::StrCat(line, " ", word);
    if (!line.empty() && Measure(longer, font).width > width) {
      lines.push_back(line);
      line = std::string(word);
    } else {
      line = longer;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

int Widest(const std::vector<std::string>& texts, Font font) {
  int width = 0;
  for (const std::string& t : texts) width = std::max(width, Measure(t, font).width);
  return width;
}

int BlockHeight(const std::vector<std::string>& lines, Font font) {
  return lines.empty() ? 0 : int(lines.size()) * (LineHeight(font) + 4) - 4;
}

// Title lines from `top`, each centred on `center_x`.
void DrawTitle(Canvas& canvas, const std::vector<std::string>& lines, int center_x, int top) {
  for (const std::string& line : lines) {
    canvas.Text(line, {center_x - Measure(line, kTitleFont).width / 2, top}, kTitleFont);
    top += LineHeight(kTitleFont) + 4;
  }
}


// ---- Line plots ----------------------------------------------------------

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

// 1, 2 or 5 times a power of ten, about span / target.
double NiceStep(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
}

// One format for every tick of an axis (not 0.0314 beside 9.2e-03): fixed
// with the decimals the step needs, scientific only for extreme magnitudes.
std::vector<std::string> TickLabels(const std::vector<double>& ticks, double step) {
  double magnitude = 0;
  for (double t : ticks) magnitude = std::max(magnitude, std::abs(t));
  const bool scientific = magnitude >= 1e5 || step < 1e-3;
  const int digits = scientific ? std::clamp(int(std::floor(std::log10(std::max(magnitude, step))) -
                                                 std::floor(std::log10(step))), 0, 3)
                                : std::max(0, -int(std::floor(std::log10(step) + 1e-9)));
  std::vector<std::string> labels;
  for (double t : ticks) {
    labels.push_back(scientific ? absl::StrFormat("%.*e", digits, t) : absl::StrFormat("%.*f", digits, t));
  }
  return labels;
}

Axis MakeAxis(double lo, double hi, int target) {
  Axis axis{lo, hi, {}, {}};
  const double step = NiceStep(hi - lo, target);
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9 && axis.ticks.size() < 25; t += step) {
    axis.ticks.push_back(std::abs(t) < step * 1e-6 ? 0.0 : t);  // no "-0.00"
  }
  axis.labels = TickLabels(axis.ticks, step);
  return axis;
}

absl::Status CheckSeries(const LinePlot& plot) {
  for (const Series& s : plot.series) {
    if (s.x.size() != s.y.size()) {
      return absl::InvalidArgumentError(absl::StrCat("series '", s.name, "' has ", s.x.size(), " x values but ",
                                                     s.y.size(), " y values"));
    }
  }
  return absl::OkStatus();
}

// Data ranges (y padded by 5% so lines do not run along the frame).
void DataRange(const LinePlot& plot, Axis* x, Axis* y) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : plot.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) continue;
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
  *x = MakeAxis(x0, x1, 6);
  *y = MakeAxis(y0 - pad, y1 + pad, 5);
}

struct LineLayout {
  int width = 0, height = 0;
  cv::Rect area;  // the plotting frame
  std::vector<std::string> title;
  int legend_x = 0;
};

std::vector<std::string> LegendNames(const LinePlot& plot) {
  std::vector<std::string> names;
  for (const Series& s : plot.series) names.push_back(s.name);
  return Widest(names, kLabelFont) > 0 ? names : std::vector<std::string>{};
}

LineLayout LayOutLinePlot(const LinePlot& plot, const Axis& x, const Axis& y) {
  const int label_h = LineHeight(kLabelFont), tick_h = LineHeight(kTickFont);
  const std::vector<std::string> legend = LegendNames(plot);
  const int legend_w = legend.empty() ? 0 : kSwatch + kGap + Widest(legend, kLabelFont);
  const int left = kPad + (plot.y_label.empty() ? 0 : label_h + kGap) + Widest(y.labels, kTickFont) + kGap;
  // The last x tick label is centred on the frame's right edge.
  const int right = std::max(legend_w > 0 ? 2 * kGap + legend_w : 0, Widest(x.labels, kTickFont) / 2) + kPad;
  LineLayout l;
  l.width = std::max(plot.width, left + right + 240);
  l.title = Wrap(plot.title, kTitleFont, l.width - 2 * kPad);
  l.width = std::max(l.width, Widest(l.title, kTitleFont) + 2 * kPad);
  // Half a tick label of room where the end ticks' labels overhang the frame.
  const int top = kPad + (l.title.empty() ? 0 : BlockHeight(l.title, kTitleFont) + kGap) + tick_h / 2;
  const int bottom = tick_h / 2 + kGap + tick_h + (plot.x_label.empty() ? 0 : kGap + label_h) + kPad;
  const int legend_h = int(legend.size()) * (label_h + 6);
  const int y_label_w = Measure(plot.y_label, kLabelFont).width;
  l.height = std::max(plot.height, top + bottom + std::max({160, legend_h, y_label_w}));
  l.area = cv::Rect(left, top, l.width - left - right, l.height - top - bottom);
  l.legend_x = l.area.x + l.area.width + 2 * kGap;
  return l;
}

void DrawAxes(Canvas& canvas, const LineLayout& l, const Axis& x, const Axis& y) {
  const cv::Rect& a = l.area;
  const int tick_h = LineHeight(kTickFont);
  auto px = [&](double v) { return a.x + int(std::lround((v - x.lo) / (x.hi - x.lo) * a.width)); };
  auto py = [&](double v) { return a.y + a.height - int(std::lround((v - y.lo) / (y.hi - y.lo) * a.height)); };
  for (size_t i = 0; i < y.ticks.size(); ++i) {
    const int yy = py(y.ticks[i]);
    cv::line(canvas.image(), {a.x, yy}, {a.x + a.width, yy}, {230, 230, 230}, 1);
    const Extent e = Measure(y.labels[i], kTickFont);
    canvas.Text(y.labels[i], {a.x - kGap - e.width, yy - e.height() / 2}, kTickFont);
  }
  for (size_t i = 0; i < x.ticks.size(); ++i) {
    const int xx = px(x.ticks[i]);
    cv::line(canvas.image(), {xx, a.y + a.height}, {xx, a.y + a.height + 4}, {60, 60, 60}, 1);
    canvas.CenteredText(x.labels[i], {xx, a.y + a.height + tick_h / 2 + kGap + tick_h / 2}, kTickFont);
  }
  cv::rectangle(canvas.image(), a, {60, 60, 60}, 1);
}

void DrawAxisLabels(Canvas& canvas, const LinePlot& plot, const LineLayout& l) {
  if (!plot.x_label.empty()) {
    const Extent e = Measure(plot.x_label, kLabelFont);
    const int x = std::clamp(l.area.x + (l.area.width - e.width) / 2, kPad, l.width - kPad - e.width);
    canvas.Text(plot.x_label, {x, l.height - kPad - e.height()}, kLabelFont);
  }
  if (!plot.y_label.empty()) {
    const Extent e = Measure(plot.y_label, kLabelFont);
    canvas.VerticalText(plot.y_label, {kPad, l.area.y + (l.area.height - e.width) / 2}, kLabelFont);
  }
}

void DrawSeries(Canvas& canvas, const LinePlot& plot, const LineLayout& l, const Axis& x, const Axis& y) {
  const cv::Rect& a = l.area;
  auto px = [&](double vx, double vy) {
    return cv::Point(a.x + int(std::lround((vx - x.lo) / (x.hi - x.lo) * a.width)),
                     a.y + a.height - int(std::lround((vy - y.lo) / (y.hi - y.lo) * a.height)));
  };
  const bool legend = !LegendNames(plot).empty();
  const int row_h = LineHeight(kLabelFont) + 6;
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const Series& s = plot.series[k];
    const cv::Scalar color = kPalette[k % (sizeof(kPalette) / sizeof(kPalette[0]))];
    for (size_t i = 1; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i - 1]) || !std::isfinite(s.y[i])) continue;
      cv::line(canvas.image(), px(s.x[i - 1], s.y[i - 1]), px(s.x[i], s.y[i]), color, 2, cv::LINE_AA);
    }
    if (s.x.size() == 1 && std::isfinite(s.y[0])) cv::circle(canvas.image(), px(s.x[0], s.y[0]), 3, color, -1);
    if (!legend) continue;
    const int top = a.y + int(k) * row_h, mid = top + LineHeight(kLabelFont) / 2;
    cv::line(canvas.image(), {l.legend_x, mid}, {l.legend_x + kSwatch, mid}, color, 3);
    canvas.Text(s.name, {l.legend_x + kSwatch + kGap, top}, kLabelFont);
  }
}

// ---- Heat maps -------------------------------------------------------------

absl::Status CheckValues(const HeatMap& map) {
  if (map.values.empty()) return absl::InvalidArgumentError("heat map has no rows");
  for (const auto& row : map.values) {
    if (row.size() != map.values[0].size()) return absl::InvalidArgumentError("heat map rows differ in length");
  }
  return absl::OkStatus();
}

// Integers for counts, 2 decimals for fractions: one format in every cell.
std::vector<std::vector<std::string>> CellTexts(const HeatMap& map) {
  int decimals = map.decimals;
  if (decimals < 0) {
    decimals = 0;
    for (const auto& row : map.values) {
      for (double v : row) {
        if (std::isfinite(v) && v != std::round(v)) decimals = 2;
      }
    }
  }
  std::vector<std::vector<std::string>> texts;
  for (const auto& row : map.values) {
    texts.emplace_back();
    for (double v : row) texts.back().push_back(std::isfinite(v) ? absl::StrFormat("%.*f", decimals, v) : "-");
  }
  return texts;
}

struct HeatLayout {
  int width = 0, height = 0;
  int cell = 0;
  cv::Point grid;  // top-left of the first cell
  int content_x = 0;
  std::vector<std::string> title;
  bool vertical_columns = false;
};

HeatLayout LayOutHeatMap(const HeatMap& map, const std::vector<std::vector<std::string>>& cells) {
  const int rows = int(map.values.size()), cols = int(map.values[0].size());
  const int label_h = LineHeight(kLabelFont);
  int widest_cell = 0;
  for (const auto& row : cells) widest_cell = std::max(widest_cell, Widest(row, kLabelFont));
  HeatLayout l;
  l.cell = std::max({map.cell, widest_cell + 2 * kGap, label_h + 2 * kGap});
  const int col_w = Widest(map.col_labels, kLabelFont);
  // Vertical column names rather than cut ones.
  l.vertical_columns = col_w > l.cell - kGap;
  const int row_axis_w = map.row_axis.empty() ? 0 : label_h + kGap;
  const int grid_x = row_axis_w + Widest(map.row_labels, kLabelFont) + kGap;
  const int content_w = grid_x + cols * l.cell;
  l.title = Wrap(map.title, kTitleFont, std::max(content_w, 420));
  l.width = std::max(content_w, Widest(l.title, kTitleFont)) + 2 * kPad;
  l.content_x = (l.width - content_w) / 2;  // the matrix centred under a wider title
  l.grid = {l.content_x + grid_x, kPad + (l.title.empty() ? 0 : BlockHeight(l.title, kTitleFont) + kGap)};
  const int col_labels_h = l.vertical_columns ? col_w : label_h;
  const int grid_h = std::max(rows * l.cell, Measure(map.row_axis, kLabelFont).width);
  l.height = l.grid.y + grid_h + kGap + col_labels_h + (map.col_axis.empty() ? 0 : kGap + label_h) + kPad;
  return l;
}

void DrawCells(Canvas& canvas, const HeatMap& map, const HeatLayout& l,
               const std::vector<std::vector<std::string>>& cells) {
  double vmax = 0;
  for (const auto& row : map.values) {
    for (double v : row) vmax = std::max(vmax, std::isfinite(v) ? v : 0.0);
  }
  if (vmax <= 0) vmax = 1;
  const int c = l.cell;
  for (size_t r = 0; r < map.values.size(); ++r) {
    for (size_t k = 0; k < map.values[r].size(); ++k) {
      const double v = map.values[r][k];
      const double t = std::isfinite(v) ? std::clamp(v / vmax, 0.0, 1.0) : 0.0;
      const cv::Point at = l.grid + cv::Point(int(k) * c, int(r) * c);
      // White -> dark blue; the 1 px gap separates the cells.
      cv::rectangle(canvas.image(), at, at + cv::Point(c - 2, c - 2), {255 - 100 * t, 255 - 200 * t, 255 - 230 * t},
                    cv::FILLED);
      canvas.CenteredText(cells[r][k], at + cv::Point(c / 2, c / 2), kLabelFont,
                          t > 0.55 ? kWhite : cv::Scalar(30, 30, 30));
    }
  }
}

void DrawHeatLabels(Canvas& canvas, const HeatMap& map, const HeatLayout& l) {
  const int rows = int(map.values.size()), cols = int(map.values[0].size()), c = l.cell;
  for (int r = 0; r < rows && r < int(map.row_labels.size()); ++r) {
    const Extent e = Measure(map.row_labels[r], kLabelFont);
    canvas.Text(map.row_labels[r], {l.grid.x - kGap - e.width, l.grid.y + r * c + (c - e.height()) / 2}, kLabelFont);
  }
  const int labels_top = l.grid.y + rows * c + kGap;
  int labels_h = 0;
  for (int k = 0; k < cols && k < int(map.col_labels.size()); ++k) {
    const Extent e = Measure(map.col_labels[k], kLabelFont);
    const int center = l.grid.x + k * c + c / 2;
    if (l.vertical_columns) {
      canvas.VerticalText(map.col_labels[k], {center - e.height() / 2, labels_top}, kLabelFont);
      labels_h = std::max(labels_h, e.width);
    } else {
      canvas.Text(map.col_labels[k], {center - e.width / 2, labels_top}, kLabelFont);
      labels_h = std::max(labels_h, e.height());
    }
  }
  if (!map.col_axis.empty()) {
    const int center = l.grid.x + cols * c / 2;
    const Extent e = Measure(map.col_axis, kLabelFont);
    canvas.Text(map.col_axis, {center - e.width / 2, l.height - kPad - e.height()}, kLabelFont);
  }
  if (!map.row_axis.empty()) {
    const Extent e = Measure(map.row_axis, kLabelFont);
    canvas.VerticalText(map.row_axis, {l.content_x, l.grid.y + std::max(0, (rows * c - e.width) / 2)}, kLabelFont);
  }
}

}  // namespace

cv::Size TextSize(const std::string& text, double scale, int thickness) {
  const Extent e = Measure(text, scale, thickness);
  return {e.width, e.height()};
}

TextBox PutText(cv::Mat& image, const std::string& text, cv::Point at, double scale, int thickness,
                cv::Scalar color) {
  const Extent e = Measure(text, scale, thickness);
  cv::putText(image, text, {at.x, at.y + e.ascent}, kFace, scale, color, thickness, cv::LINE_AA);
  return {text, at.x, at.y, at.x + e.width, at.y + e.height()};
}

TextBox PutVerticalText(cv::Mat& image, const std::string& text, cv::Point at, double scale, int thickness,
                        cv::Scalar color) {
  const Extent e = Measure(text, scale, thickness);
  cv::Mat patch(e.height(), e.width, image.type(), kWhite), rotated;
  cv::putText(patch, text, {0, e.ascent}, kFace, scale, color, thickness, cv::LINE_AA);
  cv::rotate(patch, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
  const cv::Rect box = cv::Rect(at, rotated.size()) & cv::Rect(0, 0, image.cols, image.rows);
  cv::Mat target = image(box);
  // Dark ink on a light background: the minimum keeps both.
  cv::min(target, rotated(cv::Rect(box.tl() - at, box.size())), target);
  return {text, at.x, at.y, at.x + rotated.cols, at.y + rotated.rows};
}

absl::StatusOr<Chart> DrawLinePlot(const LinePlot& plot) {
  RETURN_IF_ERROR(CheckSeries(plot));
  Axis x, y;
  DataRange(plot, &x, &y);
  const LineLayout layout = LayOutLinePlot(plot, x, y);
  Canvas canvas(layout.width, layout.height);
  DrawTitle(canvas, layout.title, layout.width / 2, kPad);
  DrawAxes(canvas, layout, x, y);
  DrawAxisLabels(canvas, plot, layout);
  DrawSeries(canvas, plot, layout, x, y);
  return canvas.Finish();
}

absl::StatusOr<Chart> DrawHeatMap(const HeatMap& map) {
  RETURN_IF_ERROR(CheckValues(map));
  const std::vector<std::vector<std::string>> cells = CellTexts(map);
  const HeatLayout layout = LayOutHeatMap(map, cells);
  Canvas canvas(layout.width, layout.height);
  DrawTitle(canvas, layout.title, layout.width / 2, kPad);
  DrawCells(canvas, map, layout, cells);
  DrawHeatLabels(canvas, map, layout);
  return canvas.Finish();
}

absl::Status WriteLinePlot(const std::string& path, const LinePlot& plot) {
  ASSIGN_OR_RETURN(Chart chart, DrawLinePlot(plot));
  return WritePng(path, chart.image);
}

absl::Status WriteHeatMap(const std::string& path, const HeatMap& map) {
  ASSIGN_OR_RETURN(Chart chart, DrawHeatMap(map));
  return WritePng(path, chart.image);
}

}  // namespace dmue
