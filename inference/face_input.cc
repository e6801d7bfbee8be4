#include "inference/face_input.h"

#include <opencv2/imgproc.hpp>

namespace dmue::inference {

datasets::TransformOptions EvalTransformFor(const InputSpec& input) {
  datasets::TransformOptions transform = datasets::EvalTransform(input.resize(), input.crop());
  transform.mean = input.mean();
  transform.std = input.std();
  transform.grayscale = input.grayscale();
  return transform;
}

// Grey faces are the same in either order (luma is taken from RGB first).
bool NeedsChannelSwap(const InputSpec& input) {
  return input.channel_order() == InputSpec::BGR && !input.grayscale();
}

int64_t FaceInputSize(const InputSpec& input) { return 3 * int64_t{input.crop()} * input.crop(); }

absl::Status PreprocessFace(const cv::Mat& rgb, const InputSpec& input, float* out) {
  const datasets::TransformOptions transform = EvalTransformFor(input);
  if (!NeedsChannelSwap(input)) return datasets::ApplyTransform(rgb, transform, nullptr, out);
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return datasets::ApplyTransform(bgr, transform, nullptr, out);
}

}  // namespace dmue::inference
