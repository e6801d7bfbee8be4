// Least-squares similarity transforms (rotation, uniform scale, translation)
// and the bilinear warp DMUE's crop_align.py applies with them.
//
// EstimateSimilarity is skimage's SimilarityTransform.estimate (Umeyama 1991,
// with scale), in double precision. WarpSimilarity is skimage 0.19's
// `warp(img, tform.inverse, output_shape, cval=0)` fast path followed by the
// script's uint8(v * 255): bit-identical to the reference's 800x800 warps in
// the reference-compatible rounding mode (see WarpRounding).
#ifndef PREPROCESSING_SIMILARITY_TRANSFORM_H_
#define PREPROCESSING_SIMILARITY_TRANSFORM_H_

#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"

namespace dmue::preprocessing {

// The 3x3 matrix M with M * (x, y, 1)^T ~ (x', y', 1)^T that maps `src` onto
// `dst` in the least-squares sense. Needs >= 2 points, the same number in
// both, and src points that are not all equal.
absl::StatusOr<cv::Matx33d> EstimateSimilarity(const std::vector<cv::Point2d>& src,
                                               const std::vector<cv::Point2d>& dst);

// numpy.linalg.inv of a 3x3 matrix as netlib LAPACK computes it (dgetrf2 LU
// with partial pivoting, then dgetrs against the identity), operation for
// operation, so that the warp samples exactly where the reference's do.
// Returns false for a singular matrix.
bool InvertLikeNumpy(const cv::Matx33d& m, cv::Matx33d* inverse);

cv::Point2d ApplyTransform(const cv::Matx33d& m, const cv::Point2d& p);

enum class WarpRounding {
  // uint8(v * 255) after v = pixel * (1/255): truncation, which lowers 24 of
  // the 256 grey levels by one even where a pixel is copied exactly (the
  // reference's behaviour, a bug).
  kTruncateLikeReference,
  // Round to nearest: copies stay exact.
  kRound,
};

// Warps an 8-bit RGB image into an out_size canvas so that input point p lands
// at matrix * p: for each output pixel, bilinear sampling (all in float64) at
// inverse(matrix) * (col, row, 1), neighbours outside the input read 0, values
// clipped to the input's [min, max] unless 0 falls outside it.
absl::StatusOr<cv::Mat> WarpSimilarity(const cv::Mat& rgb, const cv::Matx33d& matrix,
                                       cv::Size out_size,
                                       WarpRounding rounding = WarpRounding::kRound);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_SIMILARITY_TRANSFORM_H_
