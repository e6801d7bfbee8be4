#include "preprocessing/torchscript_landmarks.h"

#include <torch/script.h>

#include <algorithm>
#include <mutex>

#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"

namespace dmue::preprocessing {

struct TorchScriptLandmarkSource::Model {
  // torch::jit::Module::forward is not const; serialise calls.
  mutable std::mutex mu;
  mutable torch::jit::Module module;
};

TorchScriptLandmarkSource::~TorchScriptLandmarkSource() = default;

absl::StatusOr<std::unique_ptr<TorchScriptLandmarkSource>> TorchScriptLandmarkSource::Load(
    const std::string& model_path, const std::string& template_path, int input_size) {
  if (input_size < 8) {
    return absl::InvalidArgumentError(absl::StrCat("input_size must be >= 8, got ", input_size));
  }
  ASSIGN_OR_RETURN(std::vector<cv::Point2d> tmpl, LoadTemplate(template_path));
  std::unique_ptr<TorchScriptLandmarkSource> source(new TorchScriptLandmarkSource());
  source->model_ = std::make_unique<Model>();
  try {
    source->model_->module = torch::jit::load(model_path, torch::kCPU);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": cannot load TorchScript model: ", e.what()));
  }
  source->model_->module.eval();
  source->model_path_ = model_path;
  source->template_ = std::move(tmpl);
  source->input_size_ = input_size;
  return source;
}

absl::StatusOr<std::vector<cv::Point2d>> TorchScriptLandmarkSource::Landmarks(
    const cv::Mat& rgb, const FaceDetection& face) const {
  // The face box, clamped to the image (crop_align.py's first crop).
  const std::array<float, 4> b = ClampBox(face.box, rgb.cols, rgb.rows, false, false);
  const int x0 = static_cast<int>(b[0]), y0 = static_cast<int>(b[1]);
  const int x1 = static_cast<int>(b[2]), y1 = static_cast<int>(b[3]);
  if (x1 <= x0 || y1 <= y0) {
    return absl::FailedPreconditionError("face box is empty inside the image");
  }
  cv::Mat crop;
  cv::resize(rgb(cv::Range(y0, y1), cv::Range(x0, x1)), crop,
             cv::Size(input_size_, input_size_), 0, 0, cv::INTER_CUBIC);
  torch::Tensor input = torch::from_blob(crop.data, {1, input_size_, input_size_, 3}, torch::kUInt8)
                            .permute({0, 3, 1, 2})
                            .to(torch::kFloat)
                            .div(255.0)
                            .contiguous();
  torch::Tensor points;
  try {
    std::lock_guard<std::mutex> lock(model_->mu);
    torch::InferenceMode guard;
    c10::IValue out = model_->module.forward({input});
    if (out.isTuple()) out = out.toTupleRef().elements().back();
    if (out.isList()) out = out.toListRef().back();
    if (!out.isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat(model_path_, ": the model must return a tensor of points"));
    }
    points = out.toTensor().to(torch::kDouble).contiguous();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(model_path_, ": forward failed: ", e.what()));
  }
  if (points.dim() == 3 && points.size(0) == 1) points = points[0];
  if (points.dim() != 2 || points.size(1) != 2 ||
      points.size(0) != static_cast<int64_t>(template_.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_path_, ": expected [1, ", template_.size(), ", 2] points, got ",
        c10::str(points.sizes())));
  }
  const double sx = static_cast<double>(x1 - x0) / input_size_;
  const double sy = static_cast<double>(y1 - y0) / input_size_;
  std::vector<cv::Point2d> result;
  const double* p = points.data_ptr<double>();
  for (int64_t k = 0; k < points.size(0); ++k) {
    result.emplace_back(p[2 * k] * sx + x0, p[2 * k + 1] * sy + y0);
  }
  return result;
}

}  // namespace dmue::preprocessing
