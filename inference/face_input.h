// The one owner of how a face crop becomes a model input: the eval transform
// of training, set from the bundle's InputSpec (dmue/model_spec.proto):
// [grey] -> Resize((resize, resize)) with PIL bilinear semantics -> CenterCrop
// (crop) -> ToTensor -> Normalize(mean, std), in the spec's channel order.
// Serving, evaluation and predict all prepare faces through here, so a model
// sees when served what it saw when trained.
//
//   std::vector<float> input(FaceInputSize(spec.input()));
//   RETURN_IF_ERROR(PreprocessFace(rgb_crop, spec.input(), input.data()));
#ifndef INFERENCE_FACE_INPUT_H_
#define INFERENCE_FACE_INPUT_H_

#include <cstdint>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "datasets/transforms.h"
#include "dmue/model_spec.pb.h"

namespace dmue::inference {

// The eval transform the spec describes (channel order is applied by
// PreprocessFace, not by the transform; see NeedsChannelSwap).
datasets::TransformOptions EvalTransformFor(const InputSpec& input);

// Whether the model wants BGR: the RGB crop's channels are swapped first.
bool NeedsChannelSwap(const InputSpec& input);

// Floats per preprocessed face: 3 x crop x crop.
int64_t FaceInputSize(const InputSpec& input);

// Writes FaceInputSize(input) floats (CHW) for `rgb` (CV_8UC3 RGB, any size).
absl::Status PreprocessFace(const cv::Mat& rgb, const InputSpec& input, float* out);

}  // namespace dmue::inference

#endif  // INFERENCE_FACE_INPUT_H_
