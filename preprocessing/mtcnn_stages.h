// The stages MtcnnImpl::Detect chains, one function each, so that each can be
// tested on its own: the image pyramid, P-Net proposals (heat map -> boxes),
// the two NMS variants, one refine loop that R-Net and O-Net share (crop,
// run the net, filter, regress, NMS), and the mapping of the results back to
// the image (squaring, crop clamping, landmarks, final order, input scale).
//
// Every function reproduces the reference's float32 arithmetic one rounding
// at a time (see ../shared/golden/mtcnn/README.md, "Quirks"): boxes are
// 1-based inclusive pixel indices, widths are x2 - x1 in the stage-1
// regression and squaring but x2 - x1 + 1 in bbreg and the landmarks.
#ifndef PREPROCESSING_MTCNN_STAGES_H_
#define PREPROCESSING_MTCNN_STAGES_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <functional>
#include <opencv2/core/mat.hpp>
#include <vector>

#include "absl/status/statusor.h"
#include "preprocessing/mtcnn.h"
#include "preprocessing/mtcnn_internal.h"

namespace dmue::preprocessing {

// [x1, y1, x2, y2] in the reference's convention and the score of the net
// that last judged the box.
struct Box {
  float x1, y1, x2, y2, score;
};

// ---- 1. Image pyramid ------------------------------------------------------

struct PyramidLevel {
  double scale;
  int rows, cols;  // int(H * scale + 1), int(W * scale + 1).
};

// The levels of an image of rows x cols for PyramidScales(...).
std::vector<PyramidLevel> PyramidLevels(int rows, int cols, double min_face_size, double factor);

// ---- 2. P-Net proposals ----------------------------------------------------

// Where a P-Net output map lies on its level: the net ran on `run` (a window
// on P-Net's stride-2 grid, possibly the whole level), so map cell (r, c) is
// level cell (r + run.row0 / 2, c + run.col0 / 2); only cells whose 12x12
// window lies in `searched` (or that runs to the level's end) are proposed.
struct PnetPlacement {
  LevelWindow searched, run;
  int level_rows = 0, level_cols = 0;
};

// A stage-1 proposal: its 12x12 cell's box in image pixels, the P-Net score
// and the regression offsets.
struct Proposal {
  Box box;
  std::array<float, 4> reg;
};

// Heat map -> boxes: the cells of `prob` ([h, w], face probability) with
// prob >= threshold, in row-major order, boxed as floor((2 * cell + 1) / s),
// floor((2 * cell + 12) / s) in float32, with their offsets from `reg`
// ([4, h, w]). Both tensors float32 and contiguous.
std::vector<Proposal> PnetProposals(const at::Tensor& prob, const at::Tensor& reg, double scale,
                                    float threshold, const PnetPlacement& placement);

// The stage-1 boxes R-Net crops from: each proposal regressed with widths
// x2 - x1 (the reference's inline formula, not bbreg) and squared.
std::vector<Box> RegressProposals(const std::vector<Proposal>& proposals);

// ---- 3. NMS ----------------------------------------------------------------

// torchvision.ops.nms (CPU kernel of 0.14): stable descending score order,
// area without +1, suppress when IoU > threshold (compared in double).
// Returns the kept indices, highest score first.
std::vector<int> NmsTorchvision(const std::vector<Box>& boxes, double threshold);

// facenet-pytorch nms_numpy(method="Min"): areas and intersections with +1,
// overlap = inter / min(area_i, area_j), kept when overlap <= threshold
// (float32). Returns the kept indices in the reference's pick order.
std::vector<int> NmsNumpyMin(const std::vector<Box>& boxes, float threshold);

// numpy's argsort (kind="quicksort", numpy 1.24: introsort with insertion
// sort below 17 elements) of float32 keys, ascending, ties in numpy's order.
std::vector<int64_t> NpArgsort(const std::vector<float>& keys);

// The boxes of `items` (anything with a `box` member), and `items` at
// `indices`, in that order.
template <typename T>
std::vector<Box> BoxesOf(const std::vector<T>& items) {
  std::vector<Box> boxes;
  boxes.reserve(items.size());
  for (const T& item : items) boxes.push_back(item.box);
  return boxes;
}
template <typename T>
std::vector<T> Pick(const std::vector<T>& items, const std::vector<int>& indices) {
  std::vector<T> picked;
  picked.reserve(indices.size());
  for (int i : indices) picked.push_back(items[i]);
  return picked;
}

// ---- 4. Refine loop (R-Net, O-Net) -----------------------------------------

enum class NmsMethod {
  kTorchvisionIou,  // NmsTorchvision.
  kNumpyMin,        // NmsNumpyMin.
};

// How the refine loop runs for one stage (RnetStage / OnetStage).
struct RefineStage {
  const char* name = "";
  int crop_size = 0;    // Crops are resampled to crop_size x crop_size.
  float threshold = 0;  // A crop passes with score > threshold.
  NmsMethod nms = NmsMethod::kTorchvisionIou;
  double nms_threshold = 0;  // Compared in double by NmsTorchvision, float by NmsNumpyMin.
  // O-Net: NMS compares the regressed boxes; R-Net: the boxes it judged.
  bool nms_on_regressed = false;
  bool square = false;  // Square the regressed boxes (R-Net).
  bool compat = false;  // An empty crop fails (the reference) instead of dropping the box.
  int batch_size = 1;
};
RefineStage RnetStage(const MtcnnOptions& options);
RefineStage OnetStage(const MtcnnOptions& options);

// A net's outputs for a batch of n crops: reg [n, 4], prob [n, 2] (column 1 =
// face) and, from O-Net, landmarks [n, 10] (5 x's, then 5 y's, relative to
// the crop's box); R-Net leaves `landmarks` undefined.
struct RefineNetOutput {
  at::Tensor reg, prob, landmarks;
};
using RefineNet = std::function<RefineNetOutput(const at::Tensor& crops)>;

// A box that passed a refine stage, regressed (and squared if the stage
// does), with the stage's score; landmarks (x, y) in image pixels, 0-based,
// decoded from the box before the regression (zeros without landmarks).
struct RefinedBox {
  Box box;
  std::array<std::array<float, 2>, 5> landmarks = {};
};

// What a stage saw: crops made, crops over threshold, boxes after NMS.
struct RefineCounts {
  int64_t inputs = 0, over_threshold = 0, after_nms = 0;
};

// The refine loop: crops every box of `boxes` from `rgb` (CropRectOf; an
// empty crop drops its box, or fails in compat mode), runs `net` on them in
// batches of stage.batch_size (channels-last [n, 3, size, size] tensors of
// AreaResampleNormalized crops), keeps the boxes whose score passes, decodes
// landmarks, regresses (Bbreg), runs the stage's NMS and squares. Output in
// the NMS's order.
absl::StatusOr<std::vector<RefinedBox>> Refine(const cv::Mat& rgb, const std::vector<Box>& boxes,
                                               const RefineStage& stage, const RefineNet& net,
                                               RefineCounts* counts);

// ---- 5. Box geometry and mapping back --------------------------------------

// rerec: squares the box around its centre, side max(x2 - x1, y2 - y1).
void Square(Box& box);

// bbreg: x1 += reg[0] * w, y1 += reg[1] * h, ... with w = x2 - x1 + 1.
void Bbreg(Box& box, const float* reg);

// The reference's pad(): the box truncated toward zero to 1-based inclusive
// pixel bounds, clamped to [1, width] x [1, height] (the part of the box
// outside the image is dropped, not zero-padded).
CropRect CropRectOf(const Box& box, int width, int height);

// Landmark k of a crop's box from the net's relative output (5 x's, then 5
// y's): x = (x2 - x1 + 1) * l[k] + x1 - 1, y likewise (0-based pixels).
std::array<std::array<float, 2>, 5> LandmarksInImage(const Box& box, const float* relative);

// Detections in `order` (kLargestFirst: numpy's argsort of the areas,
// reversed, as the reference; kMostProbableFirst: descending probability,
// larger box first on ties).
std::vector<FaceDetection> OrderFaces(std::vector<FaceDetection> faces, FaceOrder order);

// Detections made on a downscaled copy (det_cols x det_rows) of an image of
// cols x rows, in the image's pixels: boxes as 1-based indices, landmarks as
// 0-based centres. No-op when the sizes agree.
void MapToInput(int cols, int rows, int det_cols, int det_rows, std::vector<FaceDetection>& faces);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_MTCNN_STAGES_H_
