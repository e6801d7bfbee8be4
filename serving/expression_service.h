// The transport-independent core of the server: photo bytes in, every face
// with its box, score, 5 landmarks and expression probabilities out. It is
// the dynamic batcher, the photo slots and the metrics on top of inference/:
//
//   at most detection_concurrency photos at once: inference::PhotoAnalyzer
//   (decode with limits, MTCNN, crop-align, the spec's eval transform) ->
//   dynamic batcher across requests -> inference::Classifier (the bundle's
//   BN-folded model with AUTO / FP32 / BF16 compute) -> probabilities.
//
// With skip_detection the photo is taken as one aligned face crop (what the
// reference's inference.py classifies). The HTTP, gRPC and CLI front ends all
// call Analyze(); its errors carry the status the front ends map to replies:
// InvalidArgument (bad or unsupported bytes), ResourceExhausted (over a
// limit), Unavailable (not ready / shutting down).
#ifndef SERVING_EXPRESSION_SERVICE_H_
#define SERVING_EXPRESSION_SERVICE_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/model_spec.pb.h"
#include "serving/metrics.h"
#include "serving/server_config.pb.h"

namespace dmue::serving {

struct FaceResult {
  // [x1, y1, x2, y2] in pixels of the photo as sent (full resolution).
  std::array<float, 4> box = {0, 0, 0, 0};
  float score = 0;  // detector probability (1 with skip_detection)
  // (x, y): left eye, right eye, nose, left and right mouth corners.
  std::array<std::array<float, 2>, 5> landmarks = {};
  std::vector<float> probabilities;  // one per class
  int top_class = -1;
};

struct AnalyzeOptions {
  // The photo is already an aligned face crop: classify it whole.
  bool skip_detection = false;
};

struct AnalyzeResult {
  int width = 0, height = 0;  // of the photo as sent
  std::vector<FaceResult> faces;
  // Faces found beyond ServerConfig.max_faces (the most probable are kept).
  int faces_dropped = 0;
  double decode_ms = 0, detect_ms = 0, classify_ms = 0;
};

struct ModelMetadata {
  std::string name, version, platform;
  std::vector<std::string> class_names;
  int input_size = 0;  // side of the model input (input_crop)
};

class ExpressionService {
 public:
  // Loads the model bundle (ServerConfig.model_path with the spec
  // ServerConfig.model_spec names, else the one beside the weights) and the
  // detector (errors name the file). `metrics` (may be null) receives the
  // batcher and pipeline metrics.
  static absl::StatusOr<std::unique_ptr<ExpressionService>> Create(const ServerConfig& config,
                                                                   MetricsRegistry* metrics);
  virtual ~ExpressionService() = default;

  // `source` names the input in errors (a file name, "request body", ...).
  virtual absl::StatusOr<AnalyzeResult> Analyze(absl::string_view image_bytes,
                                                const AnalyzeOptions& options,
                                                absl::string_view source) = 0;

  // Probabilities [n, C] of n preprocessed model inputs (n x 3 x S x S floats,
  // normalised; S = input_size), through the same batcher: the Open Inference
  // Protocol's tensor route.
  virtual absl::StatusOr<std::vector<float>> ClassifyTensors(const std::vector<float>& inputs, int n) = 0;

  virtual const ModelMetadata& metadata() const = 0;
  virtual const ServerConfig& config() const = 0;
  // The served model's contract (classes, input).
  virtual const ModelSpec& spec() const = 0;
  // Stops the batcher after the queued faces; later calls are Unavailable.
  virtual void Shutdown() = 0;
};

}  // namespace dmue::serving

#endif  // SERVING_EXPRESSION_SERVICE_H_
