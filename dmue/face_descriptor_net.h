// A face-identity descriptor: face-api's FaceRecognitionNet (dlib's ResNet
// face descriptor, trained by Davis King on ~3M faces of ~7.5k identities),
// rebuilt with LibTorch ops from the TF.js weights that the npm package
// @vladmandic/face-api@1.7.15 ships, as the teacher for starting DMUE from an
// identity-trained trunk (issue 13; the paper starts from MS-Celeb-1M).
//
// A 150x150 RGB face -> 128 floats; faces of one person lie within ~0.6 of
// each other (Euclidean), as in dlib. The computation follows face-api's
// forwardInput() step by step (same op order, same zero padding of the
// down-sampling shortcuts), so descriptors match face-api's own on TF.js's CPU
// backend to float rounding (README, "Face descriptor").
//
// The caller crops and resizes to 150x150: face-api itself would zero-pad a
// non-square input to a square and resize it bilinearly; that is not done
// here.
#ifndef DMUE_FACE_DESCRIPTOR_NET_H_
#define DMUE_FACE_DESCRIPTOR_NET_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/io/tfjs_weights.h"

namespace dmue {

// The manifest's file name inside face-api's model folder.
inline constexpr char kFaceApiManifest[] = "face_recognition_model-weights_manifest.json";

// Where tools/setup.sh puts face-api's model folder: $DMUE_FACE_API_DIR when
// set, else <home>/.cache/dmue-npm/face-api-1.7.15/package/model, with the
// home directory of the user from the password database (not $HOME, which
// Bazel points at the test's temp folder).
std::string DefaultFaceApiModelDir();

class FaceDescriptorNet {
 public:
  static constexpr int kInputSide = 150;
  static constexpr int kDescriptorSize = 128;

  // Reads <model_dir>/face_recognition_model-weights_manifest.json and its
  // shard.
  static absl::StatusOr<FaceDescriptorNet> Load(const std::string& model_dir);
  // From weights already read; `source` labels errors.
  static absl::StatusOr<FaceDescriptorNet> FromWeights(const io::TfjsWeights& weights, absl::string_view source);

  // The weights the net reads, in face-api's manifest order, with their
  // TF.js shapes (filters HWIO).
  static std::vector<std::pair<std::string, std::vector<int64_t>>> WeightShapes();

  // `images`: [N, 3, 150, 150] RGB, uint8 or floating point with values in
  // [0, 255], on the CPU. Returns [N, 128] float32 descriptors. Runs without
  // autograd (the teacher is frozen).
  absl::StatusOr<at::Tensor> Descriptor(const at::Tensor& images) const;

 private:
  // conv (+ bias), then the per-channel affine "scale" layer.
  struct ConvLayer {
    at::Tensor filters;  // OIHW.
    at::Tensor bias, scale, shift;
  };
  struct Residual {
    ConvLayer conv1, conv2;
    bool down = false;  // Stride-2 "valid" conv1 and an average-pooled shortcut.
  };

  FaceDescriptorNet() = default;
  static absl::StatusOr<ConvLayer> LoadConv(const io::TfjsWeights& weights, const std::string& prefix, int64_t in,
                                            int64_t out, int64_t kernel, absl::string_view source);
  static at::Tensor Conv(const at::Tensor& x, const ConvLayer& layer, int64_t stride, int64_t padding, bool relu);
  static at::Tensor Block(const at::Tensor& x, const Residual& block);

  ConvLayer stem_;
  std::vector<Residual> blocks_;
  at::Tensor fc_;  // [256, 128].
};

}  // namespace dmue

#endif  // DMUE_FACE_DESCRIPTOR_NET_H_
