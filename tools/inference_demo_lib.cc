#include "tools/inference_demo_lib.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "datasets/transforms.h"
#include "dmue/io/image_decode.h"

namespace dmue::tools {

absl::StatusOr<Prediction> ClassifyImageFile(InferenceModel& model, const std::string& image_path,
                                             int resize, int crop) {
  absl::StatusOr<cv::Mat> rgb = io::ReadImageRgb(image_path);
  if (!rgb.ok()) return rgb.status();
  const datasets::TransformOptions transform = datasets::EvalTransform(resize, crop);
  torch::Tensor input = torch::empty({1, 3, crop, crop});
  if (absl::Status s = datasets::ApplyTransform(*rgb, transform, nullptr, input.data_ptr<float>()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(image_path, ": ", s.message()));
  }
  torch::NoGradGuard no_grad;
  model->eval();
  const torch::Tensor probabilities = torch::softmax(model->forward(input), 1)[0].contiguous();
  Prediction prediction;
  prediction.label = static_cast<int>(probabilities.argmax().item<int64_t>());
  prediction.probabilities.assign(probabilities.data_ptr<float>(),
                                  probabilities.data_ptr<float>() + probabilities.numel());
  return prediction;
}

const std::vector<std::string>& AffectNetClassNames() {
  static const auto* names = new std::vector<std::string>{"Neutral", "Happy",   "Sad",   "Surprise",
                                                          "Fear",    "Disgust", "Anger", "Contempt"};
  return *names;
}

}  // namespace dmue::tools
