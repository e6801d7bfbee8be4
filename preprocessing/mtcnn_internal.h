// The pieces of the detector that tests check one by one against the
// reference's golden stage tensors: the three nets (mtcnn_nets.cc), the area
// resampler and DetectInRegion's level windows (mtcnn_resample.cc), and
// MtcnnImpl, which chains the stages of mtcnn_stages.h (mtcnn.cc).
#ifndef PREPROCESSING_MTCNN_INTERNAL_H_
#define PREPROCESSING_MTCNN_INTERNAL_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

#include "absl/status/statusor.h"
#include "preprocessing/mtcnn.h"

namespace dmue::preprocessing {

struct LevelWindow;
struct PnetPlacement;
struct Proposal;
struct PyramidLevel;

// Named weights of one net.
using NetWeights = std::map<std::string, at::Tensor>;

class MtcnnImpl {
 public:
  static absl::StatusOr<std::unique_ptr<MtcnnImpl>> Create(NetWeights pnet, NetWeights rnet,
                                                           NetWeights onet,
                                                           const MtcnnOptions& options);

  // facenet-pytorch's forward passes on normalised NCHW input (any memory
  // format): P-Net -> (reg [N,4,h,w], prob [N,2,h,w]); R-Net -> (reg [N,4],
  // prob [N,2]); O-Net -> (reg [N,4], landmarks [N,10], prob [N,2]).
  std::pair<at::Tensor, at::Tensor> Pnet(const at::Tensor& x) const;
  // P-Net on the `run` window of a level_rows x level_cols pyramid level
  // (x: that window): each cell bit for bit the whole level's (where
  // PnetWindowIsExact), its scores computed where the whole level's are.
  std::pair<at::Tensor, at::Tensor> PnetOnWindow(const at::Tensor& x, const LevelWindow& run,
                                                 int level_rows, int level_cols) const;
  std::pair<at::Tensor, at::Tensor> Rnet(const at::Tensor& x) const;
  std::tuple<at::Tensor, at::Tensor, at::Tensor> Onet(const at::Tensor& x) const;

  // Whether P-Net on a rows x cols window of a level_rows x level_cols
  // pyramid level gives, bit for bit, the whole level's outputs. at::conv2d
  // picks its kernel by input size (torch 1.13: oneDNN for batch-1 inputs of
  // more than 20480 values, else im2col + BLAS), and the kernels round
  // differently; im2col + BLAS even rounds differently for different extents.
  // So: true when every P-Net convolution runs on oneDNN for both extents
  // (asked of ATen's own backend choice, not re-derived).
  bool PnetWindowIsExact(int64_t rows, int64_t cols, int64_t level_rows,
                         int64_t level_cols) const;

  // Where P-Net looks on `level` of an image of rows x cols: with a region
  // (null: the whole level), `searched` is PnetLevelWindow's window and `run`
  // is that window where PnetWindowIsExact, else the whole level.
  PnetPlacement PlaceOnLevel(int rows, int cols, const PyramidLevel& level,
                             const cv::Rect2d* region) const;

  // Stage 1 on one level: resamples the `run` part, runs P-Net, and returns
  // PnetProposals after the per-scale NMS (IoU 0.5). Adds to the trace's
  // candidate count and timings, and with `record` its candidates.
  std::vector<Proposal> ProposeOnLevel(const cv::Mat& rgb, int level_index,
                                       const PyramidLevel& level, const PnetPlacement& placement,
                                       MtcnnTrace& trace, bool record) const;

  // Stage 1 over the pyramid: every level's proposals, then NMS (IoU 0.7)
  // across scales.
  std::vector<Proposal> Propose(const cv::Mat& rgb, const std::vector<PyramidLevel>& levels,
                                const cv::Rect2d* region, MtcnnTrace& trace, bool record) const;

  // `region`: null for the whole image (Mtcnn::Detect), else
  // Mtcnn::DetectInRegion's region.
  absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb, const cv::Rect2d* region,
                                                    MtcnnTrace* trace) const;

  const MtcnnOptions& options() const { return options_; }

 private:
  MtcnnImpl() = default;
  // P-Net's 6-channel output before the softmax: 2 scores, 4 offsets.
  at::Tensor PnetHeads(const at::Tensor& x) const;
  NetWeights p_, r_, o_;
  at::Tensor pnet_heads_w_, pnet_heads_b_;  // conv4_1 and conv4_2 stacked.
  MtcnnOptions options_;
};

// Area resampling (torch adaptive_avg_pool2d: bin i spans [floor(i*In/Out),
// ceil((i+1)*In/Out)), plain mean) of rows [r0, r1) x cols [c0, c1) of an
// 8-bit RGB image to out_h x out_w, normalised (v - 127.5) * 0.0078125, and
// written NHWC (channels last) to `out`. Bit-identical to the float32 ops of
// the reference.
void AreaResampleNormalized(const cv::Mat& rgb, int r0, int r1, int c0, int c1, int out_h,
                            int out_w, float* out);

// Rows [oh_begin, oh_end) x cols [ow_begin, ow_end) of the same out_h x out_w
// resampling, written NHWC as a (oh_end - oh_begin) x (ow_end - ow_begin)
// image: bit-identical to that window of AreaResampleNormalized's output.
void AreaResampleWindowNormalized(const cv::Mat& rgb, int r0, int r1, int c0, int c1, int out_h,
                                  int out_w, int oh_begin, int oh_end, int ow_begin, int ow_end,
                                  float* out);

// The window of an in_h x in_w image's out_h x out_w pyramid level that
// P-Net must see so that every 12x12 P-Net window whose input footprint
// intersects `region` (continuous input coordinates, pixel (r, c) spans
// [c, c+1) x [r, r+1)) lies inside it: rows [row0, row1) x cols [col0,
// col1), row0 and col0 even (P-Net's stride-2 grid) and each side either of
// even length or running to the end of the level, so that P-Net on the window
// gives, at every cell, the output of P-Net on the whole level at the cell
// shifted by (row0 / 2, col0 / 2) (bit for bit where
// MtcnnImpl::PnetWindowIsExact; Detect runs the whole level otherwise). Empty (row1 - row0 < 12 or
// col1 - col0 < 12) when no window can intersect the region.
struct LevelWindow {
  int row0 = 0, row1 = 0, col0 = 0, col1 = 0;
  bool empty() const { return row1 - row0 < 12 || col1 - col0 < 12; }
};
LevelWindow PnetLevelWindow(int in_h, int in_w, int out_h, int out_w, const cv::Rect2d& region);

// An uninitialised float tensor of sizes [n, 3, h, w] with channels-last
// strides, as the reference's tensors are.
at::Tensor ChannelsLastBuffer(int64_t n, int64_t h, int64_t w);

// 1-based inclusive crop bounds (the reference's pad()): image rows
// [y - 1, ey) and cols [x - 1, ex).
struct CropRect {
  int y, ey, x, ex;
  bool empty() const { return !(ey > y - 1 && ex > x - 1); }
};

// The crops rects[begin, end) of `rgb`, each AreaResampleNormalized to
// size x size, as one ChannelsLastBuffer batch (crops in parallel).
at::Tensor CropBatch(const cv::Mat& rgb, const std::vector<CropRect>& rects, size_t begin,
                     size_t end, int size);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_MTCNN_INTERNAL_H_
