// The face crops DMUE trains and tests on, as its preprocess/ scripts make
// them (../shared/golden/mtcnn/README.md, "align/"):
//
//  - CropAlign (crop_align.py): detect, take one face's landmarks, fit a
//    similarity transform onto the template, warp the photo into an 800x800
//    canvas, detect again, enlarge that box by 256/224, crop, and resize to
//    256x256 (bicubic, aspect ratio not kept). CropAlignFace is the same flow
//    from the landmarks on, for a face already detected.
//
// The second detection searches, by default, only around where the face
// lands in the canvas (AlignOptions::second_detection_region): the first
// box mapped through the similarity transform, enlarged by
// `region_margin` of its size on every side (Mtcnn::DetectInRegion: every
// pyramid scale, P-Net on the part of each level that can see that area).
// The flow takes one face, the one the landmarks came from, so faces far from
// it in the canvas (other people brought into view by the warp) are not
// searched. The reference searches the whole canvas and takes the largest
// box; the region gives the same crops on every golden and test photo (see
// README.md), and the second detection takes ~25 % less time.
//  - The fast crop-align flow (AlignOptions::flow = CropFlow::kFast) skips
//    the warp and the second detection: it predicts the box the second
//    detection would find (PredictedCanvasBox: the first box's centre mapped
//    through the similarity, its sides scaled by the similarity's scale),
//    enlarges and clamps it on the canvas as the exact flow does, and warps
//    that crop straight from the photo to output_size (one bilinear warp,
//    area-downscaled first when the face is over twice the output's size).
//    Crops are not the reference's; how often the classifier's top-1 still
//    agrees with the exact flow is measured in README.md.
//  - CropMsra (crop_msra.py): detect, enlarge the box by 256/224, crop at
//    native size.
//
// Landmarks are pluggable (LandmarkSource): by default MTCNN's 5 points fitted
// to the 5-point subset of the WFLW-98 template (the golden outputs were made
// that way, since DMUE's FAN weights are not public), or a user's 98-point
// TorchScript model (torchscript_landmarks.h) fitted to the full template.
//
// `compat` reproduces the scripts' bugs; the default fixes them:
//  - box clamp after detection: x2 > W becomes W-1 and y2 > H becomes H-1
//    (crop_align), and crop_msra even compares x2 with H and y2 with W
//    (PIL's (W, H) order misread); default: clamp to [0, W] x [0, H].
//  - enlarged crop clamp: an overflowing right/bottom side becomes W-1 / H-1
//    and loses its last column/row; default: W / H.
//  - the warp's uint8(v * 255) truncation (lowers 24 grey levels by one);
//    default: round to nearest.
// Neither mode crops outside the image or pads.
#ifndef PREPROCESSING_FACE_ALIGNER_H_
#define PREPROCESSING_FACE_ALIGNER_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "preprocessing/mtcnn.h"

namespace dmue::preprocessing {

// Points of the 98-point WFLW template on the 800x800 canvas (DMUE's
// template.npy) and its 5-point subset in MTCNN's order (rows 96, 97, 54, 76,
// 82): (314,364) (484,364) (395,458) (310,524) (480,524).
const std::vector<cv::Point2d>& Template5();
// Reads a template as "x y" lines (../shared/models/align/template.txt).
absl::StatusOr<std::vector<cv::Point2d>> LoadTemplate(const std::string& path);

// Where the alignment landmarks come from.
class LandmarkSource {
 public:
  virtual ~LandmarkSource() = default;
  // Landmarks of `face` (found by MTCNN in `rgb`), in pixels of `rgb`, in the
  // order of Template().
  virtual absl::StatusOr<std::vector<cv::Point2d>> Landmarks(const cv::Mat& rgb,
                                                             const FaceDetection& face) const = 0;
  // The canvas points the landmarks are fitted to.
  virtual const std::vector<cv::Point2d>& Template() const = 0;
  virtual std::string Name() const = 0;
};

// MTCNN's own five landmarks, fitted to Template5().
class MtcnnLandmarkSource : public LandmarkSource {
 public:
  absl::StatusOr<std::vector<cv::Point2d>> Landmarks(const cv::Mat& rgb,
                                                     const FaceDetection& face) const override;
  const std::vector<cv::Point2d>& Template() const override { return Template5(); }
  std::string Name() const override { return "mtcnn5"; }
};

enum class FaceSelection {
  kLargest,        // The reference: the largest box.
  kMostConfident,  // Highest O-Net probability.
};

enum class CropFlow {
  kExact,  // The reference: warp to the canvas, detect again, crop that box.
  kFast,   // Predict the second box; one warp from the photo to the crop.
};

struct AlignOptions {
  bool compat = false;
  CropFlow flow = CropFlow::kExact;
  FaceSelection selection = FaceSelection::kLargest;
  int canvas_size = 800;  // Warp target (the template's frame).
  int output_size = 256;  // CropAlign's final size (0: keep the raw crop).
  // Enlargement h * num / den per side pair (the reference's 256/224).
  int enlarge_num = 256;
  int enlarge_den = 224;
  // Keep the 800x800 warp and the raw crop in the result.
  bool keep_intermediates = false;
  // Second detection only around the expected face (see the header comment);
  // false: on the whole canvas, as the reference. If the region yields no
  // face, the whole canvas is searched.
  bool second_detection_region = true;
  // Margin added on each side of the expected box, as a fraction of its
  // width (left, right) and height (top, bottom).
  double region_margin = 0.25;
};

struct CropRect {
  int row0 = 0, row1 = 0, col0 = 0, col1 = 0;  // Half-open.
  int height() const { return row1 - row0; }
  int width() const { return col1 - col0; }
};

struct AlignResult {
  // CropAlign: output_size x output_size RGB; CropMsra: the native-size crop.
  cv::Mat crop;
  // The detection the crop was made from (CropAlign: in the warped canvas),
  // as detected and after clamping.
  FaceDetection face;
  std::array<float, 4> box_clamped = {0, 0, 0, 0};
  std::array<int, 2> pads_h_w = {0, 0};
  CropRect rect;
  int num_faces = 0;  // Faces the (first) detection found.
  // CropAlign only.
  FaceDetection first_face;
  std::vector<cv::Point2d> landmarks_src;
  cv::Matx33d matrix = cv::Matx33d::eye();  // Photo (x, y, 1) -> canvas.
  cv::Mat warped;                           // If keep_intermediates.
  cv::Mat raw_crop;                         // If keep_intermediates.
};

class FaceAligner {
 public:
  // Both pointers must outlive the aligner. `landmarks` may be null for
  // CropMsra-only use.
  FaceAligner(const Mtcnn* detector, const LandmarkSource* landmarks, AlignOptions options);

  // NotFound when no face is detected (message says which detection).
  // Detect, SelectFace, then CropAlignFace.
  absl::StatusOr<AlignResult> CropAlign(const cv::Mat& rgb) const;
  // The crop-align flow for one face already detected in `rgb` (by the same
  // detector, e.g. each face of a multi-face photo): landmarks, warp, second
  // detection, crop. `face.box` places the second detection's region.
  // num_faces is left 0.
  absl::StatusOr<AlignResult> CropAlignFace(const cv::Mat& rgb, const FaceDetection& face) const;
  absl::StatusOr<AlignResult> CropMsra(const cv::Mat& rgb) const;

  const AlignOptions& options() const { return options_; }

 private:
  absl::StatusOr<FaceDetection> SelectFace(const std::vector<FaceDetection>& faces) const;
  // CropFlow::kFast from the similarity on: fills face, box, rect and crop.
  absl::Status FastCrop(const cv::Mat& rgb, AlignResult* result) const;

  const Mtcnn* detector_;
  const LandmarkSource* landmarks_;
  AlignOptions options_;
};

// The reference's post-detection clamp of a box; `swap_wh` is crop_msra's
// (W, H) mix-up (compare x2 with H and y2 with W).
std::array<float, 4> ClampBox(const std::array<float, 4>& box, int width, int height,
                              bool compat, bool swap_wh);

// Where a face with box `box` (photo pixels, the detector's convention) lands
// under `matrix` (photo (x, y, 1) -> canvas): the bounding box of its mapped
// corners, enlarged by `margin` of its width / height on each side, as (x, y,
// width, height) in canvas pixels.
cv::Rect2d ExpectedFaceRegion(const std::array<float, 4>& box, const cv::Matx33d& matrix,
                              double margin);

// Where the exact flow's second detection is expected to box the face of
// `box` (photo pixels) on the canvas of `matrix` (photo (x, y, 1) -> canvas):
// the box's centre mapped, its width and height times the similarity's
// scale (the detector boxes the upright face about as it boxed the rotated
// one). [x1, y1, x2, y2] in canvas pixels.
std::array<float, 4> PredictedCanvasBox(const std::array<float, 4>& box, const cv::Matx33d& matrix);

// The 256/224 enlargement of a (clamped) box and its clamp to the image.
CropRect EnlargedCropRect(const std::array<float, 4>& box, int width, int height, int num,
                          int den, bool compat, std::array<int, 2>* pads_h_w);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_FACE_ALIGNER_H_
