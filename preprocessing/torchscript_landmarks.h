// A LandmarkSource backed by a user's TorchScript landmark model (for example
// DMUE's 98-point WFLW FAN, scripted with its heatmap decoding), loaded with
// torch::jit::load.
//
// Contract of the scripted module, mirroring crop_align.py's FAN step:
//   input:  float32 [1, 3, S, S], RGB, values in [0, 1], the face box
//           (clamped to the image) cropped and resized to S x S (bicubic);
//   output: float32 [1, K, 2] or [K, 2], (x, y) in pixels of that S x S input
//           (a tuple/list output uses its last element, as FAN's does).
// The points are mapped back to the photo (scaled by box size / S, shifted by
// the box origin) and fitted to a K-point template (K = 98 for WFLW:
// ../shared/models/align/template.txt). The reference truncated them to
// integers (a numpy >= 1.24 crash); this keeps them as floats.
#ifndef PREPROCESSING_TORCHSCRIPT_LANDMARKS_H_
#define PREPROCESSING_TORCHSCRIPT_LANDMARKS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "preprocessing/face_aligner.h"

namespace dmue::preprocessing {

class TorchScriptLandmarkSource : public LandmarkSource {
 public:
  // `template_path`: "x y" lines, as many as the model outputs.
  static absl::StatusOr<std::unique_ptr<TorchScriptLandmarkSource>> Load(
      const std::string& model_path, const std::string& template_path, int input_size = 256);
  ~TorchScriptLandmarkSource() override;

  absl::StatusOr<std::vector<cv::Point2d>> Landmarks(const cv::Mat& rgb,
                                                     const FaceDetection& face) const override;
  const std::vector<cv::Point2d>& Template() const override { return template_; }
  std::string Name() const override { return "torchscript:" + model_path_; }

 private:
  struct Model;
  TorchScriptLandmarkSource() = default;
  std::unique_ptr<Model> model_;
  std::string model_path_;
  std::vector<cv::Point2d> template_;
  int input_size_ = 256;
};

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_TORCHSCRIPT_LANDMARKS_H_
