#include "serving/expression_service.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "datasets/transforms.h"
#include "dmue/folded_model.h"
#include "dmue/inference_model.h"
#include "dmue/io/image_decode.h"
#include "dmue/model_bundle.h"
#include "dmue/model_io.h"
#include "glog/logging.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"
#include "serving/batcher.h"
#include "serving/server_config.h"

namespace dmue::serving {
namespace {

using preprocessing::FaceDetection;

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

class ExpressionServiceImpl : public ExpressionService {
 public:
  ExpressionServiceImpl(ServerConfig config, ModelSpec spec, FoldedModel model,
                        std::unique_ptr<preprocessing::Mtcnn> detector, MetricsRegistry* metrics)
      : config_(std::move(config)),
        spec_(std::move(spec)),
        model_(std::move(model)),
        detector_(std::move(detector)),
        aligner_(detector_.get(), &landmarks_, preprocessing::AlignOptions{}),
        slots_(config_.detection_concurrency()) {
    metadata_.name = config_.model_name();
    metadata_.version = config_.model_version();
    metadata_.platform = "libtorch_cpp";
    metadata_.class_names.assign(spec_.class_names().begin(), spec_.class_names().end());
    metadata_.input_size = spec_.input().crop();
    transform_ = datasets::EvalTransform(spec_.input().resize(), spec_.input().crop());
    transform_.mean = spec_.input().mean();
    transform_.std = spec_.input().std();
    transform_.grayscale = spec_.input().grayscale();
    if (metrics != nullptr) {
      faces_total_ = metrics->AddCounter("dmue_faces_total", "Faces classified.");
      stage_seconds_ = metrics->AddHistogram("dmue_stage_seconds", "Time per request in each pipeline stage.",
                                             ExponentialBuckets(0.0005, 2, 16));
    }
    BatcherOptions options;
    options.max_batch_size = config_.max_batch_size();
    options.max_delay = absl::Microseconds(config_.batch_delay_us());
    options.item_size = 3 * InputSide() * InputSide();
    options.output_size = NumClasses();
    batcher_ = std::make_unique<DynamicBatcher>(
        options, [this](const float* items, int n) { return RunModel(items, n); },
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
    if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty image"));
    if (static_cast<int64_t>(bytes.size()) > config_.max_request_bytes()) {
      return absl::ResourceExhaustedError(absl::StrCat(source, ": ", bytes.size(), " bytes is over the limit of ",
                                                       config_.max_request_bytes()));
    }
    AnalyzeResult result;
    std::vector<float> inputs;
    {
      SlotGuard slot(&slots_);
      absl::Time t = absl::Now();
      io::ImageLimits limits;
      limits.max_bytes = config_.max_request_bytes();
      limits.max_pixels = config_.max_image_pixels();
      limits.max_decoded_side = config_.max_detection_side();
      absl::StatusOr<io::DecodedImage> image = io::DecodeImage(bytes, source, limits);
      if (!image.ok()) return image.status();
      result.width = static_cast<int>(image->full_width);
      result.height = static_cast<int>(image->full_height);
      result.decode_ms = MsSince(t);
      Observe("decode", result.decode_ms);

      t = absl::Now();
      std::vector<cv::Mat> crops;
      if (options.skip_detection) {
        FaceResult face;
        face.box = {0, 0, static_cast<float>(result.width), static_cast<float>(result.height)};
        face.score = 1;
        result.faces.push_back(face);
        crops.push_back(image->rgb);
      } else {
        absl::Status s = DetectAndAlign(*image, &result, &crops);
        if (!s.ok()) return s;
      }
      result.detect_ms = MsSince(t);
      Observe("detect_align", result.detect_ms);
      const size_t item = 3 * static_cast<size_t>(InputSide()) * InputSide();
      inputs.resize(crops.size() * item);
      for (size_t i = 0; i < crops.size(); ++i) {
        const cv::Mat& crop = crops[i];
        if (absl::Status s = datasets::ApplyTransform(crop, transform_, nullptr, inputs.data() + i * item); !s.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(source, ": face ", i, ": ", s.message()));
        }
      }
    }
    const absl::Time t = absl::Now();
    const int n = static_cast<int>(result.faces.size());
    absl::StatusOr<std::vector<float>> probabilities = batcher_->Run(inputs, n);
    if (!probabilities.ok()) return probabilities.status();
    const int C = NumClasses();
    for (int i = 0; i < n; ++i) {
      FaceResult& face = result.faces[i];
      face.probabilities.assign(probabilities->begin() + i * C, probabilities->begin() + (i + 1) * C);
      face.top_class = static_cast<int>(std::max_element(face.probabilities.begin(), face.probabilities.end()) -
                                        face.probabilities.begin());
    }
    result.classify_ms = MsSince(t);
    Observe("classify", result.classify_ms);
    if (faces_total_ != nullptr) faces_total_->Add(n);
    return result;
  }

  absl::StatusOr<std::vector<float>> ClassifyTensors(const std::vector<float>& inputs, int n) override {
    const int64_t item = 3 * static_cast<int64_t>(InputSide()) * InputSide();
    if (n <= 0 || static_cast<int64_t>(inputs.size()) != n * item) {
      return absl::InvalidArgumentError(absl::StrCat("expected ", n, " x 3 x ", InputSide(), " x ", InputSide(),
                                                     " = ", n * item, " floats, got ",
                                                     inputs.size()));
    }
    return batcher_->Run(inputs, n);
  }

  const ModelMetadata& metadata() const override { return metadata_; }
  const ServerConfig& config() const override { return config_; }
  const ModelSpec& spec() const override { return spec_; }
  void Shutdown() override { batcher_->Stop(); }

 private:
  int InputSide() const { return spec_.input().crop(); }
  int NumClasses() const { return spec_.model().num_classes(); }

  void Observe(const char* stage, double ms) {
    if (stage_seconds_ != nullptr) stage_seconds_->Observe(ms / 1000.0, {{"stage", stage}});
  }

  absl::Status DetectAndAlign(const io::DecodedImage& image, AnalyzeResult* result, std::vector<cv::Mat>* crops) {
    absl::StatusOr<std::vector<FaceDetection>> faces = detector_->Detect(image.rgb);
    if (!faces.ok()) return faces.status();
    std::vector<FaceDetection> kept = std::move(*faces);
    if (static_cast<int>(kept.size()) > config_.max_faces()) {
      std::stable_sort(kept.begin(), kept.end(),
                       [](const FaceDetection& a, const FaceDetection& b) { return a.prob > b.prob; });
      result->faces_dropped = static_cast<int>(kept.size()) - config_.max_faces();
      kept.resize(config_.max_faces());
    }
    const float sx = static_cast<float>(image.scale_x), sy = static_cast<float>(image.scale_y);
    for (const FaceDetection& face : kept) {
      cv::Mat crop;
      absl::StatusOr<preprocessing::AlignResult> aligned = aligner_.CropAlignFace(image.rgb, face);
      if (aligned.ok()) {
        crop = aligned->crop;
      } else {
        // The second detection can miss a face the first found (profile,
        // blur): classify the enlarged box instead of dropping the face.
        const std::array<float, 4> box = preprocessing::ClampBox(face.box, image.rgb.cols, image.rgb.rows,
                                                                  /*compat=*/false, /*swap_wh=*/false);
        const preprocessing::CropRect r =
            preprocessing::EnlargedCropRect(box, image.rgb.cols, image.rgb.rows, 256, 224, false, nullptr);
        if (r.height() <= 0 || r.width() <= 0) continue;
        cv::resize(image.rgb(cv::Range(r.row0, r.row1), cv::Range(r.col0, r.col1)), crop, cv::Size(256, 256), 0, 0,
                   cv::INTER_CUBIC);
        VLOG(1) << "face at " << face.box[0] << "," << face.box[1] << ": " << aligned.status().message()
                << "; classified the unaligned crop";
      }
      FaceResult out;
      out.box = {face.box[0] / sx, face.box[1] / sy, face.box[2] / sx, face.box[3] / sy};
      out.score = face.prob;
      for (int k = 0; k < 5; ++k) out.landmarks[k] = {face.landmarks[k][0] / sx, face.landmarks[k][1] / sy};
      result->faces.push_back(out);
      crops->push_back(crop);
    }
    return absl::OkStatus();
  }

  // An exception out of LibTorch fails this batch's requests (500), never
  // the process.
  absl::StatusOr<std::vector<float>> RunModel(const float* items, int n) {
    try {
      return RunModelUnguarded(items, n);
    } catch (const std::exception& e) {
      LOG(ERROR) << "model call on " << n << " faces failed: " << e.what();
      return absl::InternalError(absl::StrCat("model call failed: ", e.what()));
    }
  }

  absl::StatusOr<std::vector<float>> RunModelUnguarded(const float* items, int n) {
    const int S = InputSide();
    torch::InferenceMode inference;
    torch::Tensor input = torch::from_blob(const_cast<float*>(items), {n, 3, S, S}, torch::kFloat32);
    const torch::Tensor probabilities = torch::softmax(model_.Forward(input), 1).contiguous();
    return std::vector<float>(probabilities.data_ptr<float>(), probabilities.data_ptr<float>() + probabilities.numel());
  }

  const ServerConfig config_;
  const ModelSpec spec_;
  ModelMetadata metadata_;
  const FoldedModel model_;
  std::unique_ptr<preprocessing::Mtcnn> detector_;
  preprocessing::MtcnnLandmarkSource landmarks_;
  preprocessing::FaceAligner aligner_;
  Slots slots_;
  datasets::TransformOptions transform_;
  Metric* faces_total_ = nullptr;
  Metric* stage_seconds_ = nullptr;
  std::unique_ptr<DynamicBatcher> batcher_;
};

// The bundle's spec wins; a config that restates it inline is refused, so
// the two cannot silently disagree. Without a spec file, the inline spec is
// the one the user gave.
absl::StatusOr<ModelBundle> LoadServedModel(const ServerConfig& config) {
  const std::string spec_path = config.model_spec().empty() ? SpecPathFor(config.model_path()) : config.model_spec();
  std::error_code ec;
  const bool has_spec_file = std::filesystem::exists(spec_path, ec);
  if (has_spec_file && config.has_model()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ServerConfig.model: the bundle has a spec (", spec_path,
        "); remove the inline model / class_names / input_resize / input_crop / grayscale fields"));
  }
  if (has_spec_file || !config.has_model()) return LoadModelBundle(config.model_path(), spec_path);
  ModelBundle bundle;
  bundle.spec = InlineSpec(config);
  if (absl::Status s = ValidateModelSpec(bundle.spec); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("ServerConfig inline spec: ", s.message()));
  }
  absl::StatusOr<InferenceModel> model = LoadInferenceModel(config.model_path(), config.model());
  if (!model.ok()) return model.status();
  bundle.weights_path = config.model_path();
  bundle.model = *std::move(model);
  LOG(INFO) << config.model_path() << " has no spec file: using the config's inline spec";
  return bundle;
}

// BatchNorm folded, with the compute the config fixes or AUTO measures here.
absl::StatusOr<FoldedModel> FoldServedModel(const ServerConfig& config, const ModelSpec& spec, InferenceModel& model) {
  model->eval();
  if (config.precision() == ServerConfig::AUTO && !config.bf16()) {
    InferenceComputeProbe probe;
    probe.batch_sizes = {1, std::max(1, config.max_batch_size())};
    probe.image_size = spec.input().crop();
    absl::StatusOr<InferenceComputeChoice> choice = ChooseInferenceCompute(model, probe);
    if (!choice.ok()) return choice.status();
    LOG(INFO) << choice->Summary();
    return FoldedModel::Fold(model, choice->options);
  }
  ComputeOptions compute;
  compute.precision = config.bf16() || config.precision() == ServerConfig::BF16 ? Precision::kBFloat16
                                                                                : Precision::kFloat32;
  compute.channels_last = config.channels_last();
  return FoldedModel::Fold(model, compute);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExpressionService>> ExpressionService::Create(const ServerConfig& config,
                                                                             MetricsRegistry* metrics) {
  if (absl::Status s = ValidateServerConfig(config); !s.ok()) return s;
  at::set_num_threads(config.num_threads());
  absl::StatusOr<ModelBundle> bundle = LoadServedModel(config);
  if (!bundle.ok()) return bundle.status();
  absl::StatusOr<FoldedModel> model = FoldServedModel(config, bundle->spec, bundle->model);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<preprocessing::Mtcnn>> detector = preprocessing::Mtcnn::Load(config.detector_dir());
  if (!detector.ok()) {
    return absl::Status(detector.status().code(),
                        absl::StrCat("detector_dir ", config.detector_dir(), ": ", detector.status().message()));
  }
  return std::unique_ptr<ExpressionService>(
      new ExpressionServiceImpl(config, std::move(bundle->spec), *std::move(model), std::move(*detector), metrics));
}

}  // namespace dmue::serving
