// Draws one metric of several training runs in one chart (PNG), from their
// metrics.jsonl: e.g. FERPlus Valid accuracy per epoch of the majority-label
// and the vote-trained model.
//
//   bazel run //training:plot_runs -- --runs="majority=$PWD/runs/ferplus_ce,votes=$PWD/runs/ferplus_votes" \
//       --metric=eval:accuracy --y_label="Valid accuracy" --output=$PWD/valid_accuracy.png
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dmue/util/plot.h"
#include "training/metrics_log.h"

DEFINE_string(runs, "", "comma-separated name=run_dir pairs (each with a metrics.jsonl)");
DEFINE_string(metric, "eval:accuracy", "kind:key of the records to draw (kinds: train, eval, epoch)");
DEFINE_string(title, "", "chart title (default: the metric)");
DEFINE_string(x_label, "epoch", "x axis label");
DEFINE_string(y_label, "", "y axis label (default: the key)");
DEFINE_bool(x_is_step, false, "x = optimiser step instead of epoch");
DEFINE_string(output, "", "PNG to write");

namespace dmue::training {
namespace {

absl::StatusOr<Series> ReadSeries(const std::string& name, const std::string& dir, const std::string& kind,
                                  const std::string& key) {
  const std::string path = dir + "/metrics.jsonl";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  Series series;
  series.name = name;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    absl::StatusOr<MetricRecord> record = ParseMetricLine(line);
    if (!record.ok()) return absl::DataLossError(absl::StrCat(path, ":", number, ": ", record.status().message()));
    auto value = record->values.find(key);
    if (record->kind != kind || value == record->values.end()) continue;
    series.x.push_back(static_cast<double>(FLAGS_x_is_step ? record->step : record->epoch));
    series.y.push_back(value->second);
  }
  if (series.x.empty()) return absl::NotFoundError(absl::StrCat(path, " has no ", kind, ":", key, " records"));
  return series;
}

int Main() {
  const std::vector<std::string> metric = absl::StrSplit(FLAGS_metric, ':');
  if (FLAGS_runs.empty() || FLAGS_output.empty() || metric.size() != 2) {
    std::cerr << "plot_runs: --runs=name=dir[,...], --metric=kind:key and --output are required\n";
    return 2;
  }
  LinePlot plot;
  plot.title = FLAGS_title.empty() ? FLAGS_metric : FLAGS_title;
  plot.x_label = FLAGS_x_is_step && FLAGS_x_label == "epoch" ? "step" : FLAGS_x_label;
  plot.y_label = FLAGS_y_label.empty() ? metric[1] : FLAGS_y_label;
  for (absl::string_view run : absl::StrSplit(FLAGS_runs, ',', absl::SkipEmpty())) {
    const std::vector<std::string> parts = absl::StrSplit(run, absl::MaxSplits('=', 1));
    if (parts.size() != 2) {
      std::cerr << "plot_runs: --runs entry '" << run << "' is not name=dir\n";
      return 2;
    }
    absl::StatusOr<Series> series = ReadSeries(parts[0], parts[1], metric[0], metric[1]);
    if (!series.ok()) {
      std::cerr << "plot_runs: " << series.status().message() << "\n";
      return 1;
    }
    plot.series.push_back(*std::move(series));
  }
  if (absl::Status s = WriteLinePlot(FLAGS_output, plot); !s.ok()) {
    std::cerr << "plot_runs: " << s.message() << "\n";
    return 1;
  }
  std::cout << "wrote " << FLAGS_output << "\n";
  return 0;
}

}  // namespace
}  // namespace dmue::training

int main(int argc, char** argv) {
  gflags::SetUsageMessage("plot one metric of several training runs: see training/plot_runs_main.cc");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return dmue::training::Main();
}
