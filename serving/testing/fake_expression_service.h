// A scripted ExpressionService for tests of the protocol layer and the front
// ends without a model or a detector: Analyze returns `analyze_result` (or
// `analyze_status` when it is not OK) and records what it was given;
// ClassifyTensors returns n rows of `C` probabilities (row i puts 0.5 on
// class i % C, the rest shared), or `classify_status`.
#ifndef SERVING_TESTING_FAKE_EXPRESSION_SERVICE_H_
#define SERVING_TESTING_FAKE_EXPRESSION_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dmue/base/status_macros.h"
#include "serving/expression_service.h"

namespace dmue::serving::testing {

class FakeExpressionService : public ExpressionService {
 public:
  // A model "dmue" version "1" with `classes` and input side `input_size`.
  explicit FakeExpressionService(std::vector<std::string> classes = {"neutral", "happy", "sad"},
                                 int input_size = 4) {
    metadata_.name = "dmue";
    metadata_.version = "1";
    metadata_.platform = "fake";
    metadata_.class_names = std::move(classes);
    metadata_.input_size = input_size;
  }

  absl::StatusOr<AnalyzeResult> Analyze(absl::string_view image_bytes, const AnalyzeOptions& options,
                                        absl::string_view source) override {
    absl::MutexLock lock(&mutex_);
    last_image = std::string(image_bytes);
    last_options = options;
    last_source = std::string(source);
    ++analyze_calls;
    RETURN_IF_ERROR(analyze_status);
    return analyze_result;
  }

  absl::StatusOr<std::vector<float>> ClassifyTensors(const std::vector<float>& inputs, int n) override {
    absl::MutexLock lock(&mutex_);
    last_tensor = inputs;
    last_n = n;
    RETURN_IF_ERROR(classify_status);
    const int C = static_cast<int>(metadata_.class_names.size());
    std::vector<float> probabilities(static_cast<size_t>(n) * C, C > 1 ? 0.5f / (C - 1) : 1.f);
    for (int i = 0; i < n && C > 1; ++i) probabilities[i * C + i % C] = 0.5f;
    return probabilities;
  }

  const ModelMetadata& metadata() const override { return metadata_; }
  const ServerConfig& config() const override { return config_; }
  const ModelSpec& spec() const override { return spec_; }
  void Shutdown() override {}

  // What the next calls answer.
  AnalyzeResult analyze_result;
  absl::Status analyze_status;
  absl::Status classify_status;
  // What the last calls were given.
  std::string last_image, last_source;
  AnalyzeOptions last_options;
  std::vector<float> last_tensor;
  int last_n = 0;
  int analyze_calls = 0;

 private:
  absl::Mutex mutex_;
  ModelMetadata metadata_;
  ServerConfig config_;
  ModelSpec spec_;
};

// One face: box (10, 20, 110, 140), score 0.99, landmarks (1, 2) .. (9, 10),
// probabilities `p`, top class the largest.
inline FaceResult FakeFace(std::vector<float> p) {
  FaceResult face;
  face.box = {10, 20, 110, 140};
  face.score = 0.99f;
  for (int i = 0; i < 5; ++i) face.landmarks[i] = {2.f * i + 1, 2.f * i + 2};
  face.top_class = 0;
  for (size_t c = 1; c < p.size(); ++c) {
    if (p[c] > p[face.top_class]) face.top_class = static_cast<int>(c);
  }
  face.probabilities = std::move(p);
  return face;
}

}  // namespace dmue::serving::testing

#endif  // SERVING_TESTING_FAKE_EXPRESSION_SERVICE_H_
