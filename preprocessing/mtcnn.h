// MTCNN face detector (P-Net, R-Net, O-Net; Zhang et al., IEEE SPL 2016) as
// DMUE's preprocessing runs it: facenet-pytorch's variant, vendored in
// FaceX-Zoo addition_module/DMUE/preprocess/mtcnn, with the same weights.
//
// Detect() reproduces that reference's `MTCNN(keep_all=True).detect(img,
// landmarks=True)`: boxes and landmarks agree within 1e-3 px and probabilities
// within 1e-5 on every golden photo (../shared/golden/mtcnn), with identical
// stage counts. The reference's conventions are kept on purpose (see
// ../shared/golden/mtcnn/README.md, "Quirks"):
//   - boxes are float [x1, y1, x2, y2] treated as 1-based inclusive pixel
//     indices internally, not clamped to the image, not square;
//   - landmarks are 0-based (x, y) pixel centres, subject's right eye first;
//   - R-/O-Net crops drop the part of a box outside the image and stretch the
//     rest (no zero padding as in the original MTCNN);
//   - faces come largest box first (FaceOrder::kLargestFirst).
//
// Where the reference has a bug, the default fixes it and `compat` keeps it:
//   - an image whose shorter side is < min_face_size (no pyramid level):
//     the reference crashes (torch.cat of an empty list); default: no faces;
//     compat: FailedPrecondition error.
//   - a box whose crop is empty: the reference skips the crop but not the box,
//     which misaligns boxes and net outputs and then crashes; default: the box
//     is dropped; compat: FailedPrecondition error.
//
// Speed (vs the reference on the same CPU): pyramid levels and crops are
// resampled straight from the uint8 image with integer bin sums (exactly the
// float values adaptive_avg_pool2d gives), R-/O-Net run on all crops of a
// stage in batches, and no per-crop tensor ops are issued. Set the number of
// intra-op threads with at::set_num_threads in the caller.
//
// This header is torch-free. Detect() is a pipeline of the stages in
// mtcnn_stages.h (pyramid, P-Net proposals, NMS, one refine loop for R-Net
// and O-Net, mapping back); the nets and the resampler are in
// mtcnn_internal.h.
#ifndef PREPROCESSING_MTCNN_H_
#define PREPROCESSING_MTCNN_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

#include "absl/status/statusor.h"

namespace dmue::preprocessing {

struct FaceDetection {
  // [x1, y1, x2, y2] exactly as the reference returns it (see above).
  std::array<float, 4> box = {0, 0, 0, 0};
  // O-Net face probability.
  float prob = 0;
  // (x, y) of: eye with smaller x, eye with larger x, nose tip, mouth corner
  // with smaller x, mouth corner with larger x.
  std::array<std::array<float, 2>, 5> landmarks = {};

  // (x2 - x1) * (y2 - y1) in float, as the reference sorts by.
  float Area() const { return (box[2] - box[0]) * (box[3] - box[1]); }
};

enum class FaceOrder {
  kLargestFirst,       // The reference (select_largest=True).
  kMostProbableFirst,  // Descending probability (ties: larger box first).
};

struct MtcnnOptions {
  double min_face_size = 20;
  // P-Net (>=), R-Net (>) and O-Net (>) thresholds.
  std::array<float, 3> thresholds = {0.6f, 0.7f, 0.7f};
  double factor = 0.709;
  FaceOrder order = FaceOrder::kLargestFirst;
  // Keep the reference's failure modes (see the header comment).
  bool compat = false;
  // Images whose longer side exceeds this are downscaled (area) before
  // detection and the results mapped back, so that huge photos never need
  // gigabytes (the reference has no such limit). 0: never.
  int max_input_side = 4096;
  // R-Net / O-Net batch size; bounds memory for images with many candidates.
  int batch_size = 512;
  // Run the nets on channels-last tensors, as the reference does (its
  // rounding); false: NCHW-contiguous (outputs move by ~1e-6).
  bool channels_last = true;
};

// How many boxes each stage kept: the reference's stage_counts
// (../shared/golden/mtcnn/images.json), one field per name.
struct MtcnnStageCounts {
  int64_t num_scales = 0;
  int64_t pnet_candidates_over_threshold = 0;  // P-Net cells with prob >= threshold.
  int64_t after_per_scale_nms = 0;             // IoU 0.5 within each scale.
  int64_t after_pnet_nms = 0;                  // IoU 0.7 across scales.
  int64_t rnet_inputs = 0;
  int64_t rnet_over_threshold = 0;
  int64_t after_rnet_nms = 0;                  // IoU 0.7.
  int64_t onet_inputs = 0;
  int64_t onet_over_threshold = 0;
  int64_t after_onet_nms = 0;                  // "Min" 0.7: the faces.

  bool operator==(const MtcnnStageCounts& other) const;
  bool operator!=(const MtcnnStageCounts& other) const { return !(*this == other); }
};

// Per-stage record of one Detect() call (for tests and diagnostics). Boxes are
// [x1, y1, x2, y2, score]; candidates add reg0..reg3.
struct MtcnnTrace {
  std::vector<double> scales;
  std::vector<std::array<int64_t, 2>> pyramid_hw;
  // Per scale, the part of the level whose P-Net windows were searched: rows
  // [0], [1) x cols [2], [3) (the whole level for Detect(); DetectInRegion()
  // may crop it or skip a level, which then has fewer than 12 rows or cols).
  std::vector<std::array<int64_t, 4>> pnet_windows;
  std::vector<std::array<float, 9>> stage1_candidates;
  std::vector<int> stage1_candidate_scale_index;
  std::vector<std::array<float, 5>> stage1_boxes;
  std::vector<std::array<float, 5>> stage2_boxes;
  std::vector<std::array<float, 5>> final_boxes;  // Before the final ordering.
  MtcnnStageCounts counts;
  // Factor the input was downscaled by (1 when not).
  double input_scale = 1.0;
  // Wall time of the stages in milliseconds: pyramid resampling, P-Net
  // (including its post-processing and NMS), R-Net stage, O-Net stage.
  double resample_ms = 0, pnet_ms = 0, rnet_ms = 0, onet_ms = 0;
};

class MtcnnImpl;

class Mtcnn {
 public:
  // Loads pnet.pt, rnet.pt and onet.pt (legacy torch.save state dicts, as in
  // ../shared/models/mtcnn) from `model_dir`.
  static absl::StatusOr<std::unique_ptr<Mtcnn>> Load(const std::string& model_dir,
                                                     const MtcnnOptions& options = {});
  ~Mtcnn();
  Mtcnn(const Mtcnn&) = delete;
  Mtcnn& operator=(const Mtcnn&) = delete;

  // Detects faces in an 8-bit 3-channel RGB image (any row stride). Safe to
  // call from several threads at once.
  absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb,
                                                    MtcnnTrace* trace = nullptr) const;

  // Detect() searching only where a face can be seen from `region` (x, y,
  // width, height in pixels of `rgb`; continuous coordinates: pixel (r, c)
  // spans [c, c+1) x [r, r+1); it may extend past the image). Every pyramid
  // scale is kept, but at each scale P-Net runs only on the part of the
  // (whole-image) pyramid level that holds every P-Net window whose input
  // footprint intersects the region, aligned to P-Net's stride-2 grid; each
  // such window gets bit for bit the score and regression it gets in Detect()
  // (P-Net is fully convolutional; the level is cropped, not re-resampled),
  // and its candidate box is in whole-image coordinates. Windows wholly
  // outside the region are not evaluated, so a face that only such windows
  // find is not found (the large windows of the small scales reach far, so a
  // big face beside the region may still be). Where at::conv2d would compute
  // that part with another kernel than the whole level (small parts; see
  // MtcnnImpl::PnetWindowIsExact), P-Net runs on the whole level and the
  // other windows are dropped. R-Net and O-Net then run as in Detect() (on
  // crops of the whole image).
  //
  // The candidates are a subset of Detect()'s, so a face inside the region
  // comes out as Detect() finds it (R-Net and O-Net batch fewer crops, which
  // can move a value by an ulp), except near the region's border:
  // there a candidate that Detect() suppresses (NMS) in favour of one outside
  // the region survives, and may yield an extra detection. Give the region a
  // margin of at least the size of the smallest faces that matter around the
  // faces you look for. Trace counts count only the searched part.
  // InvalidArgument for a region with a non-finite or negative size.
  absl::StatusOr<std::vector<FaceDetection>> DetectInRegion(const cv::Mat& rgb,
                                                            const cv::Rect2d& region,
                                                            MtcnnTrace* trace = nullptr) const;

  const MtcnnOptions& options() const;
  // For tests of the nets (mtcnn_internal.h).
  const MtcnnImpl& impl() const { return *impl_; }

 private:
  explicit Mtcnn(std::unique_ptr<MtcnnImpl> impl);
  std::unique_ptr<MtcnnImpl> impl_;
};

// Pyramid scales 12/min_face * factor^k while min(H, W) * scale >= 12, in
// float64 exactly as the reference computes them.
std::vector<double> PyramidScales(int64_t height, int64_t width, double min_face_size,
                                  double factor);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_MTCNN_H_
