// The pieces of mtcnn.cc that tests check one by one against the reference's
// golden stage tensors: the three nets and the area resampler.
#ifndef PREPROCESSING_MTCNN_INTERNAL_H_
#define PREPROCESSING_MTCNN_INTERNAL_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include <opencv2/core/mat.hpp>

#include "absl/status/statusor.h"
#include "preprocessing/mtcnn.h"

namespace dmue::preprocessing {

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
  std::pair<at::Tensor, at::Tensor> Rnet(const at::Tensor& x) const;
  std::tuple<at::Tensor, at::Tensor, at::Tensor> Onet(const at::Tensor& x) const;

  absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb, MtcnnTrace* trace) const;

  const MtcnnOptions& options() const { return options_; }

 private:
  MtcnnImpl() = default;
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

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_MTCNN_INTERNAL_H_
