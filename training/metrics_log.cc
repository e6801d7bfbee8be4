#include "training/metrics_log.h"

#include <cmath>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dmue/base/status_macros.h"
#include "dmue/util/plot.h"

namespace dmue::training {
namespace {

std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.8g", v);
}

absl::Status AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat("cannot append to '", path, "'"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MetricsLog> MetricsLog::Open(const std::string& dir) {
  MetricsLog log(dir);
  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    absl::StatusOr<MetricRecord> record = ParseMetricLine(line);
    if (record.ok()) log.records_.push_back(*record);  // A torn last line is skipped.
  }
  std::ofstream probe(dir + "/metrics.jsonl", std::ios::app);
  if (!probe) return absl::PermissionDeniedError(absl::StrCat("cannot write to '", dir, "'"));
  return log;
}

absl::Status MetricsLog::Append(const MetricRecord& record) {
  std::vector<std::string> fields = {absl::StrCat("\"kind\":\"", record.kind, "\""),
                                     absl::StrCat("\"epoch\":", record.epoch),
                                     absl::StrCat("\"step\":", record.step)};
  std::vector<std::string> csv = {record.kind, absl::StrCat(record.epoch), absl::StrCat(record.step)};
  for (const auto& [key, value] : record.values) {
    fields.push_back(absl::StrCat("\"", key, "\":", Number(value)));
    csv.push_back(absl::StrCat(key, "=", Number(value)));
  }
  RETURN_IF_ERROR(AppendLine(dir_ + "/metrics.jsonl", absl::StrCat("{", absl::StrJoin(fields, ","), "}")));
  RETURN_IF_ERROR(AppendLine(dir_ + "/metrics.csv", absl::StrJoin(csv, ",")));
  records_.push_back(record);
  return absl::OkStatus();
}

absl::Status MetricsLog::WriteCurves() const {
  std::map<std::string, std::map<std::string, Series>> by_kind;
  for (const MetricRecord& r : records_) {
    for (const auto& [key, value] : r.values) {
      Series& s = by_kind[r.kind][key];
      s.name = key;
      s.x.push_back(static_cast<double>(r.step));
      s.y.push_back(value);
    }
  }
  for (const auto& [kind, series] : by_kind) {
    // Losses and accuracies live on different scales: one chart per group.
    std::map<std::string, LinePlot> plots;
    for (const auto& [key, s] : series) {
      const std::string group = key.find("acc") != std::string::npos ? "accuracy" : "loss";
      LinePlot& plot = plots[group];
      plot.title = absl::StrCat(kind, " ", group);
      plot.x_label = "optimiser step";
      plot.y_label = group;
      plot.series.push_back(s);
    }
    for (const auto& [group, plot] : plots) {
      RETURN_IF_ERROR(WriteLinePlot(absl::StrCat(dir_, "/curves_", kind, "_", group, ".png"), plot));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MetricRecord> ParseMetricLine(const std::string& line) {
  absl::string_view body = line;
  if (!absl::ConsumePrefix(&body, "{") || !absl::ConsumeSuffix(&body, "}")) {
    return absl::InvalidArgumentError(absl::StrCat("not a metrics line: ", line));
  }
  MetricRecord record;
  for (absl::string_view field : absl::StrSplit(body, ',')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(field, absl::MaxSplits(':', 1));
    absl::string_view key = kv.first, value = kv.second;
    if (!absl::ConsumePrefix(&key, "\"") || !absl::ConsumeSuffix(&key, "\"")) {
      return absl::InvalidArgumentError(absl::StrCat("bad key in metrics line: ", line));
    }
    if (key == "kind") {
      record.kind = std::string(absl::StripSuffix(absl::StripPrefix(value, "\""), "\""));
    } else if (key == "epoch" || key == "step") {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return absl::InvalidArgumentError("bad epoch/step");
      (key == "epoch" ? record.epoch : record.step) = v;
    } else {
      double v = std::nan("");
      if (value != "null" && !absl::SimpleAtod(value, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("bad value for ", key));
      }
      record.values[std::string(key)] = v;
    }
  }
  return record;
}

}  // namespace dmue::training
