#include "evaluation/report.h"

#include "dmue/base/files.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dmue/base/status_macros.h"
#include "dmue/util/plot.h"
#include "evaluation/charts.h"

namespace dmue::evaluation {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.10g", v);
}

std::string CsvField(absl::string_view s) {
  if (s.find_first_of(",\"\n\r") == absl::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

std::string JsonNumbers(const std::vector<double>& values) {
  std::vector<std::string> parts;
  for (double v : values) parts.push_back(JsonNumber(v));
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

}  // namespace

std::string ReportJson(const EvaluationReport& r) {
  const ClassificationSummary& s = r.summary;
  std::string j = "{\n";
  absl::StrAppend(&j, "  \"checkpoint\": ", JsonString(r.checkpoint), ",\n");
  absl::StrAppend(&j, "  \"model_spec\": ", r.model_spec.empty() ? "null" : JsonString(r.model_spec), ",\n");
  absl::StrAppend(&j, "  \"model_kind\": ", JsonString(r.model_kind), ",\n");
  absl::StrAppend(&j, "  \"data\": ", JsonString(r.data), ",\n");
  absl::StrAppend(&j, "  \"tta_flip\": ", r.tta_flip ? "true" : "false", ",\n");
  std::vector<std::string> names;
  for (const std::string& n : r.class_names) names.push_back(JsonString(n));
  absl::StrAppend(&j, "  \"class_names\": [", absl::StrJoin(names, ", "), "],\n");
  absl::StrAppend(&j, "  \"num_examples\": ", r.num_examples, ",\n");
  absl::StrAppend(&j, "  \"accuracy\": ", JsonNumber(s.accuracy), ",\n");
  absl::StrAppend(&j, "  \"mean_class_accuracy\": ", JsonNumber(s.mean_class_accuracy), ",\n");
  absl::StrAppend(&j, "  \"macro_f1\": ", JsonNumber(s.macro_f1), ",\n");
  absl::StrAppend(&j, "  \"mean_nll\": ", JsonNumber(r.mean_nll), ",\n");
  absl::StrAppend(&j, "  \"per_class\": [\n");
  for (size_t c = 0; c < s.per_class.size(); ++c) {
    const ClassMetrics& m = s.per_class[c];
    absl::StrAppend(&j, "    {\"class\": ", c, ", \"name\": ",
                    JsonString(c < r.class_names.size() ? r.class_names[c] : std::to_string(c)),
                    ", \"support\": ", m.support, ", \"predicted\": ", m.predicted, ", \"correct\": ", m.correct,
                    ", \"precision\": ", JsonNumber(m.precision), ", \"recall\": ", JsonNumber(m.recall),
                    ", \"f1\": ", JsonNumber(m.f1), ", \"precision_defined\": ", m.precision_defined ? "true" : "false",
                    ", \"recall_defined\": ", m.recall_defined ? "true" : "false", "}",
                    c + 1 < s.per_class.size() ? "," : "", "\n");
  }
  absl::StrAppend(&j, "  ],\n");
  std::vector<std::string> rows;
  for (const auto& row : r.confusion.counts()) rows.push_back(absl::StrCat("[", absl::StrJoin(row, ", "), "]"));
  absl::StrAppend(&j, "  \"confusion\": [", absl::StrJoin(rows, ", "), "],\n");
  rows.clear();
  for (const auto& row : r.confusion.RowNormalized()) rows.push_back(JsonNumbers(row));
  absl::StrAppend(&j, "  \"confusion_normalized\": [", absl::StrJoin(rows, ", "), "],\n");
  const Calibration& cal = r.calibration;
  absl::StrAppend(&j, "  \"calibration\": {\"num_bins\": ", cal.bins.size(), ", \"ece\": ", JsonNumber(cal.ece),
                  ", \"mce\": ", JsonNumber(cal.mce), ", \"bins\": [");
  for (size_t b = 0; b < cal.bins.size(); ++b) {
    const ReliabilityBin& bin = cal.bins[b];
    absl::StrAppend(&j, b ? ", " : "", "{\"lower\": ", JsonNumber(bin.lower), ", \"upper\": ", JsonNumber(bin.upper),
                    ", \"count\": ", bin.count, ", \"mean_confidence\": ", JsonNumber(bin.mean_confidence),
                    ", \"accuracy\": ", JsonNumber(bin.accuracy), "}");
  }
  absl::StrAppend(&j, "]},\n");
  if (r.votes.has_value()) {
    absl::StrAppend(&j, "  \"votes\": {\"count\": ", r.votes->count, ", \"missing\": ", r.votes_missing,
                    ", \"majority_accuracy\": ", JsonNumber(r.votes->majority_accuracy),
                    ", \"mean_kl_votes_to_prediction\": ", JsonNumber(r.votes->mean_kl),
                    ", \"mean_js_votes_vs_prediction\": ", JsonNumber(r.votes->mean_js),
                    ", \"top1_in_voted_rate\": ", JsonNumber(r.votes->top1_in_voted_rate), "},\n");
  } else {
    absl::StrAppend(&j, "  \"votes\": null,\n");
  }
  absl::StrAppend(&j, "  \"seconds\": ", JsonNumber(r.seconds), ",\n");
  absl::StrAppend(&j, "  \"images_per_second\": ", JsonNumber(r.images_per_second), "\n");
  absl::StrAppend(&j, "}\n");
  return j;
}

namespace {

std::string ClassName(const EvaluationReport& r, int c) {
  return c < int(r.class_names.size()) ? r.class_names[c] : std::to_string(c);
}

// The longest class name, at least `minimum` characters.
int NameWidth(const EvaluationReport& r, int minimum) {
  int width = minimum;
  for (int c = 0; c < r.confusion.num_classes(); ++c) width = std::max(width, int(ClassName(r, c).size()));
  return width;
}

}  // namespace

std::string ReportTable(const EvaluationReport& r) {
  const ClassificationSummary& s = r.summary;
  // Columns as wide as the longest name: a truncated "happine" is a puzzle.
  const int width = NameWidth(r, 9);
  std::string t;
  absl::StrAppend(&t, "checkpoint: ", r.checkpoint, " (", r.model_kind, ")", r.tta_flip ? ", flip TTA" : "", "\n");
  absl::StrAppend(&t, "model spec: ", r.model_spec.empty() ? "none" : r.model_spec, "\n");
  absl::StrAppend(&t, "data: ", r.data, "\n");
  absl::StrAppendFormat(&t, "%-*s %9s %9s %9s %9s %9s\n", width, "class", "support", "precision", "recall", "f1",
                        "predicted");
  for (size_t c = 0; c < s.per_class.size(); ++c) {
    const ClassMetrics& m = s.per_class[c];
    absl::StrAppendFormat(&t, "%-*s %9d %9s %9s %9.4f %9d\n", width, ClassName(r, int(c)), m.support,
                          m.precision_defined ? absl::StrFormat("%.4f", m.precision) : "-",
                          m.recall_defined ? absl::StrFormat("%.4f", m.recall) : "-", m.f1, m.predicted);
  }
  absl::StrAppendFormat(&t, "accuracy %.4f  mean class accuracy %.4f  macro F1 %.4f  (%d examples)\n", s.accuracy,
                        s.mean_class_accuracy, s.macro_f1, s.count);
  absl::StrAppendFormat(&t, "ECE (%d bins) %.4f  MCE %.4f  mean NLL %.4f\n", r.calibration.bins.size(),
                        r.calibration.ece, r.calibration.mce, r.mean_nll);
  if (r.votes.has_value()) {
    absl::StrAppendFormat(&t,
                          "votes (%d examples, %d without): majority-label accuracy %.4f  KL(votes||pred) %.4f  "
                          "JS(votes, pred) %.4f  top-1 among voted %.4f\n",
                          r.votes->count, r.votes_missing, r.votes->majority_accuracy, r.votes->mean_kl,
                          r.votes->mean_js, r.votes->top1_in_voted_rate);
  }
  // Confusion matrix (counts).
  absl::StrAppend(&t, "confusion (rows: true, columns: predicted)\n");
  const int cell = NameWidth(r, 7);
  absl::StrAppendFormat(&t, "%-*s", width, "");
  for (int c = 0; c < r.confusion.num_classes(); ++c) absl::StrAppendFormat(&t, " %*s", cell, ClassName(r, c));
  absl::StrAppend(&t, "\n");
  for (int a = 0; a < r.confusion.num_classes(); ++a) {
    absl::StrAppendFormat(&t, "%-*s", width, ClassName(r, a));
    for (int b = 0; b < r.confusion.num_classes(); ++b) absl::StrAppendFormat(&t, " %*d", cell, r.confusion.count(a, b));
    absl::StrAppend(&t, "\n");
  }
  absl::StrAppendFormat(&t, "speed: %.1f images/s (%.2f s for %d images, loading included)\n", r.images_per_second,
                        r.seconds, r.num_examples);
  return t;
}


absl::Status WriteEvaluationOutputs(const EvaluationReport& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create output directory '", dir, "': ", ec.message()));
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/report.json", ReportJson(r)));
  HeatMap map;
  map.row_labels = r.class_names;
  map.col_labels = r.class_names;
  map.title = absl::StrFormat("confusion (row-normalised), accuracy %.4f, mean class accuracy %.4f",
                              r.summary.accuracy, r.summary.mean_class_accuracy);
  map.values = r.confusion.RowNormalized();
  if (!map.values.empty()) {
    RETURN_IF_ERROR(WriteHeatMap(dir + "/confusion.png", map));
    map.title = absl::StrFormat("confusion (counts), %d examples", r.confusion.total());
    map.values.clear();
    for (const auto& row : r.confusion.counts()) map.values.emplace_back(row.begin(), row.end());
    RETURN_IF_ERROR(WriteHeatMap(dir + "/confusion_counts.png", map));
  }
  return WriteReliabilityDiagram(dir + "/reliability.png", r.calibration, "reliability");
}

std::vector<std::string> IndexClassNames(int num_classes) {
  std::vector<std::string> names;
  for (int c = 0; c < num_classes; ++c) names.push_back(std::to_string(c));
  return names;
}

}  // namespace dmue::evaluation
