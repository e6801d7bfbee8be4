#include "serving/expression_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "dmue/base/status_macros.h"
#include "dmue/compute.h"
#include "inference/classifier.h"
#include "inference/photo_analyzer.h"
#include "serving/batcher.h"
#include "serving/server_config.h"

namespace dmue::serving {
namespace {

double MsSince(absl::Time start) { return absl::ToDoubleMilliseconds(absl::Now() - start); }

// Bounds how many photos are decoded and searched at once, so that many
// concurrent uploads queue instead of multiplying peak memory.
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void Acquire() {
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(+[](int* f) { return *f > 0; }, &free_));
    --free_;
  }
  void Release() {
    absl::MutexLock lock(&mutex_);
    ++free_;
  }

 private:
  absl::Mutex mutex_;
  int free_ ABSL_GUARDED_BY(mutex_);
};

class SlotGuard {
 public:
  explicit SlotGuard(Slots* slots) : slots_(slots) { slots_->Acquire(); }
  ~SlotGuard() { slots_->Release(); }

 private:
  Slots* slots_;
};

FaceResult ToFaceResult(const inference::PhotoFace& face) {
  FaceResult result;
  result.box = face.box;
  result.score = face.score;
  result.landmarks = face.landmarks;
  return result;
}

// Photos (slots) -> inference's photo analyzer -> the dynamic batcher ->
// inference's classifier; metrics around each stage.
class ExpressionServiceImpl : public ExpressionService {
 public:
  ExpressionServiceImpl(ServerConfig config, std::unique_ptr<inference::Classifier> classifier,
                        std::unique_ptr<inference::PhotoAnalyzer> analyzer, MetricsRegistry* metrics)
      : config_(std::move(config)),
        classifier_(std::move(classifier)),
        analyzer_(std::move(analyzer)),
        slots_(config_.detection_concurrency()) {
    metadata_.name = config_.model_name();
    metadata_.version = config_.model_version();
    metadata_.platform = "libtorch_cpp";
    metadata_.class_names.assign(spec().class_names().begin(), spec().class_names().end());
    metadata_.input_size = classifier_->input_side();
    if (metrics != nullptr) {
      faces_total_ = metrics->AddCounter("dmue_faces_total", "Faces classified.");
      stage_seconds_ = metrics->AddHistogram("dmue_stage_seconds", "Time per request in each pipeline stage.",
                                             ExponentialBuckets(0.0005, 2, 16));
    }
    BatcherOptions options;
    options.max_batch_size = config_.max_batch_size();
    options.max_delay = absl::Microseconds(config_.batch_delay_us());
    options.item_size = classifier_->input_size();
    options.output_size = classifier_->num_classes();
    batcher_ = std::make_unique<DynamicBatcher>(
        options, [this](const float* items, int n) { return classifier_->Classify(items, n); },
        metrics ? metrics->AddHistogram("dmue_batch_size", "Faces per model call (dynamic batching).",
                                        {1, 2, 4, 8, 16, 32, 64, 128})
                : nullptr,
        metrics ? metrics->AddHistogram("dmue_queue_seconds", "Time a face waited in the batching queue.",
                                        ExponentialBuckets(0.0001, 2, 16))
                : nullptr);
  }

  ~ExpressionServiceImpl() override { Shutdown(); }

  absl::StatusOr<AnalyzeResult> Analyze(absl::string_view bytes, const AnalyzeOptions& options,
                                        absl::string_view source) override {
    ASSIGN_OR_RETURN(inference::AnalyzedPhoto photo, AnalyzeInSlot(bytes, options, source));
    AnalyzeResult result;
    result.width = photo.width;
    result.height = photo.height;
    result.faces_dropped = photo.faces_dropped;
    result.decode_ms = photo.decode_ms;
    result.detect_ms = photo.detect_ms;
    for (const inference::PhotoFace& face : photo.faces) result.faces.push_back(ToFaceResult(face));
    const absl::Time t = absl::Now();
    const int n = static_cast<int>(result.faces.size());
    ASSIGN_OR_RETURN(const std::vector<float> probabilities, batcher_->Run(photo.inputs, n));
    const int C = classifier_->num_classes();
    for (int i = 0; i < n; ++i) {
      FaceResult& face = result.faces[i];
      face.probabilities.assign(probabilities.begin() + i * C, probabilities.begin() + (i + 1) * C);
      face.top_class = static_cast<int>(std::max_element(face.probabilities.begin(), face.probabilities.end()) -
                                        face.probabilities.begin());
    }
    result.classify_ms = MsSince(t);
    Observe("classify", result.classify_ms);
    if (faces_total_ != nullptr) faces_total_->Add(n);
    return result;
  }

  absl::StatusOr<std::vector<float>> ClassifyTensors(const std::vector<float>& inputs, int n) override {
    const int64_t item = classifier_->input_size();
    const int side = classifier_->input_side();
    if (n <= 0 || static_cast<int64_t>(inputs.size()) != n * item) {
      return absl::InvalidArgumentError(absl::StrCat("expected ", n, " x 3 x ", side, " x ", side, " = ", n * item,
                                                     " floats, got ", inputs.size()));
    }
    return batcher_->Run(inputs, n);
  }

  const ModelMetadata& metadata() const override { return metadata_; }
  const ServerConfig& config() const override { return config_; }
  const ModelSpec& spec() const override { return classifier_->spec(); }
  void Shutdown() override { batcher_->Stop(); }

 private:
  // Decode, detect, align and preprocess under a slot; the batch waits
  // outside it so that the next photo can be searched meanwhile.
  absl::StatusOr<inference::AnalyzedPhoto> AnalyzeInSlot(absl::string_view bytes, const AnalyzeOptions& options,
                                                         absl::string_view source) {
    RETURN_IF_ERROR(inference::CheckPhotoBytes(bytes, source, analyzer_->limits()));
    SlotGuard slot(&slots_);
    ASSIGN_OR_RETURN(inference::AnalyzedPhoto photo, analyzer_->Analyze(bytes, source, options.skip_detection));
    Observe("decode", photo.decode_ms);
    Observe("detect_align", photo.detect_ms);
    return photo;
  }

  void Observe(const char* stage, double ms) {
    if (stage_seconds_ != nullptr) stage_seconds_->Observe(ms / 1000.0, {{"stage", stage}});
  }

  const ServerConfig config_;
  ModelMetadata metadata_;
  const std::unique_ptr<inference::Classifier> classifier_;
  const std::unique_ptr<inference::PhotoAnalyzer> analyzer_;
  Slots slots_;
  Metric* faces_total_ = nullptr;
  Metric* stage_seconds_ = nullptr;
  std::unique_ptr<DynamicBatcher> batcher_;
};

inference::ClassifierOptions ClassifierOptionsFor(const ServerConfig& config) {
  inference::ClassifierOptions options;
  switch (config.bf16() ? ServerConfig::BF16 : config.precision()) {
    case ServerConfig::BF16:
      options.precision = inference::PrecisionChoice::kBFloat16;
      break;
    case ServerConfig::FP32:
      options.precision = inference::PrecisionChoice::kFloat32;
      break;
    default:
      options.precision = inference::PrecisionChoice::kAuto;
  }
  options.channels_last = config.channels_last();
  options.device = config.device();
  options.num_threads = config.num_threads();
  options.auto_batch_sizes = {1, std::max(1, config.max_batch_size())};
  return options;
}

preprocessing::CropFlow CropFlowFor(const ServerConfig& config) {
  return config.crop_flow() == ServerConfig::FAST ? preprocessing::CropFlow::kFast : preprocessing::CropFlow::kExact;
}

inference::PhotoLimits PhotoLimitsFor(const ServerConfig& config) {
  inference::PhotoLimits limits;
  limits.max_bytes = config.max_request_bytes();
  limits.max_pixels = config.max_image_pixels();
  limits.max_detection_side = config.max_detection_side();
  limits.max_faces = config.max_faces();
  return limits;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExpressionService>> ExpressionService::Create(const ServerConfig& config,
                                                                             MetricsRegistry* metrics) {
  RETURN_IF_ERROR(ValidateServerConfig(config));
  // Before the model loads, naming the server's field (the classifier checks
  // again, naming its option).
  RETURN_IF_ERROR(ResolveDevice(config.device(), "ServerConfig.device").status());
  ASSIGN_OR_RETURN(std::unique_ptr<inference::Classifier> classifier,
                   inference::Classifier::Load(config.model_path(), config.model_spec(), ClassifierOptionsFor(config)));
  ASSIGN_OR_RETURN(std::unique_ptr<inference::PhotoAnalyzer> analyzer,
                   inference::PhotoAnalyzer::Create(config.detector_dir(), PhotoLimitsFor(config),
                                                    classifier->spec().input(), CropFlowFor(config)));
  return std::unique_ptr<ExpressionService>(
      new ExpressionServiceImpl(config, std::move(classifier), std::move(analyzer), metrics));
}

}  // namespace dmue::serving
