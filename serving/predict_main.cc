// Classifies the faces in photos from the command line, in process (no
// server): per face the label and the probability of every class, printed
// like the reference's inference.py, or JSON with --json (the /v1/faces reply).
//   bazel run //serving:predict -- photo.jpg [more.jpg ...] [--json]

#include <cmath>
#include <cstdio>
#include <iostream>

#include <gflags/gflags.h>
#include <nlohmann/json.hpp>

#include "dmue/base/workspace.h"
#include "dmue/io/image_decode.h"
#include "glog/logging.h"
#include "serving/config_flags.h"
#include "serving/expression_service.h"
#include "serving/protocol.h"
#include "serving/server_config.h"

DEFINE_bool(json, false, "print one JSON object per photo (as POST /v1/faces answers)");
DEFINE_bool(skip_detection, false, "the photos are aligned face crops: classify each whole");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("classify the faces in photos: predict [--json] photo.jpg ...");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = std::max(FLAGS_minloglevel, 1);
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) {
    std::cerr << "predict: " << s.message() << "\n";
    return 2;
  }
  if (argc < 2) {
    std::cerr << "usage: predict [--json] [--config=FILE] photo.jpg [more ...]\n";
    return 2;
  }
  const absl::StatusOr<dmue::serving::ServerConfig> config =
      dmue::serving::ServerConfigFromFlags([](dmue::serving::ServerConfig& c) {
        c.set_batch_delay_us(0);  // one caller: nothing to wait for
      });
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<dmue::serving::ExpressionService>> service =
      dmue::serving::ExpressionService::Create(*config, nullptr);
  if (!service.ok()) {
    std::cerr << "error: " << service.status().message() << "\n";
    return 1;
  }
  const dmue::serving::ModelMetadata& metadata = (*service)->metadata();
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    absl::StatusOr<std::string> bytes = dmue::io::ReadFileBytes(path, config->max_request_bytes());
    absl::StatusOr<dmue::serving::TimedAnalysis> timed =
        bytes.ok() ? dmue::serving::AnalyzeTimed(**service, *bytes, {FLAGS_skip_detection}, path)
                   : absl::StatusOr<dmue::serving::TimedAnalysis>(bytes.status());
    if (!timed.ok()) {
      ++failures;
      if (FLAGS_json) {
        std::cout << nlohmann::json{{"file", path}, {"error", std::string(timed.status().message())}}.dump() << "\n";
      } else {
        std::cerr << "error: " << timed.status().message() << "\n";
      }
      continue;
    }
    if (FLAGS_json) {
      std::cout << dmue::serving::FacesJson(*timed, metadata) << "\n";
      continue;
    }
    const dmue::serving::AnalyzeResult& result = timed->result;
    std::cout << path << ": " << result.faces.size() << " face(s), " << result.width << "x" << result.height
              << "\n";
    for (size_t f = 0; f < result.faces.size(); ++f) {
      const dmue::serving::FaceResult& face = result.faces[f];
      std::printf("face %zu: box [%.0f, %.0f, %.0f, %.0f] score %.4f\n", f, face.box[0], face.box[1], face.box[2],
                  face.box[3], face.score);
      std::printf("Predicted: %s\nProbabilities:\n", metadata.class_names[face.top_class].c_str());
      for (size_t c = 0; c < face.probabilities.size(); ++c) {
        std::printf("%s ----> %.4f\n", metadata.class_names[c].c_str(), face.probabilities[c]);
      }
    }
    std::fflush(stdout);
  }
  return failures == 0 ? 0 : 1;
}
