// The reference's inference.py in C++: one (pre-cropped) face image ->
// Resize(256) -> CenterCrop(224) -> normalise -> inference model -> softmax.
#ifndef TOOLS_INFERENCE_DEMO_LIB_H_
#define TOOLS_INFERENCE_DEMO_LIB_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dmue/inference_model.h"

namespace dmue::tools {

struct Prediction {
  int label = -1;
  std::vector<float> probabilities;
};

// `resize`/`crop` are the eval transform's sizes (256/224 in the reference).
absl::StatusOr<Prediction> ClassifyImageFile(InferenceModel& model, const std::string& image_path,
                                             int resize = 256, int crop = 224);

// The reference's AffectNet class order (inference.py's key table).
const std::vector<std::string>& AffectNetClassNames();

}  // namespace dmue::tools

#endif  // TOOLS_INFERENCE_DEMO_LIB_H_
