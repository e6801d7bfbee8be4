#include "preprocessing/similarity_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dmue::preprocessing {

absl::StatusOr<cv::Matx33d> EstimateSimilarity(const std::vector<cv::Point2d>& src,
                                               const std::vector<cv::Point2d>& dst) {
  const size_t n = src.size();
  if (n < 2 || dst.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("EstimateSimilarity: need >= 2 point pairs, got ",
                                                   n, " source and ", dst.size(),
                                                   " destination points"));
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(src[i].x) || !std::isfinite(src[i].y) || !std::isfinite(dst[i].x) ||
        !std::isfinite(dst[i].y)) {
      return absl::InvalidArgumentError(
          absl::StrCat("EstimateSimilarity: point ", i, " is not finite"));
    }
  }
  cv::Point2d sm(0, 0), dm(0, 0);
  for (size_t i = 0; i < n; ++i) dm += dst[i];
  dm *= 1.0 / static_cast<double>(n);
  std::vector<cv::Point2d> sd(n);  // Demeaned source.
  double src_var = 0;
  {
    for (size_t i = 0; i < n; ++i) sm += src[i];
    sm *= 1.0 / static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) {
      sd[i] = src[i] - sm;
      src_var += sd[i].x * sd[i].x + sd[i].y * sd[i].y;
    }
    src_var /= static_cast<double>(n);
  }
  cv::Matx22d a = cv::Matx22d::zeros();
  for (size_t i = 0; i < n; ++i) {
    const cv::Point2d s = sd[i];
    const cv::Point2d d = dst[i] - dm;
    a(0, 0) += d.x * s.x;
    a(0, 1) += d.x * s.y;
    a(1, 0) += d.y * s.x;
    a(1, 1) += d.y * s.y;
  }
  a *= 1.0 / static_cast<double>(n);
  if (!(src_var > 0)) {
    return absl::InvalidArgumentError("EstimateSimilarity: all source points coincide");
  }
  double dvec[2] = {1.0, 1.0};
  if (cv::determinant(a) < 0) dvec[1] = -1.0;
  cv::Mat w, u, vt;
  cv::SVD::compute(cv::Mat(a), w, u, vt);
  const double s0 = w.at<double>(0), s1 = w.at<double>(1);
  const double tol = std::max(s0, s1) * 2 * std::numeric_limits<double>::epsilon();
  const int rank = (s0 > tol) + (s1 > tol);
  if (rank == 0) {
    return absl::InvalidArgumentError("EstimateSimilarity: degenerate (rank 0) point sets");
  }
  const cv::Matx22d U(u.ptr<double>());
  const cv::Matx22d V(vt.ptr<double>());
  cv::Matx22d r;
  if (rank == 1) {
    if (cv::determinant(U) * cv::determinant(V) > 0) {
      r = U * V;
    } else {
      r = U * cv::Matx22d(1, 0, 0, -1) * V;
    }
  } else {
    r = U * cv::Matx22d(dvec[0], 0, 0, dvec[1]) * V;
  }
  const double scale = 1.0 / src_var * (s0 * dvec[0] + s1 * dvec[1]);
  const cv::Vec2d rs = r * cv::Vec2d(sm.x, sm.y);
  cv::Matx33d t = cv::Matx33d::eye();
  t(0, 2) = dm.x - scale * rs[0];
  t(1, 2) = dm.y - scale * rs[1];
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) t(i, j) = r(i, j) * scale;
  }
  return t;
}

bool InvertLikeNumpy(const cv::Matx33d& m, cv::Matx33d* inverse) {
  double a[3][3];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) a[i][j] = m(i, j);
  }
  int perm[3] = {0, 1, 2};
  auto swap_rows = [&](int r, int s) {
    if (r == s) return;
    for (int j = 0; j < 3; ++j) std::swap(a[r][j], a[s][j]);
    std::swap(perm[r], perm[s]);
  };
  auto pivot = [&](int col) {  // idamax: the first largest |value|.
    int p = col;
    for (int i = col + 1; i < 3; ++i) {
      if (std::abs(a[i][col]) > std::abs(a[p][col])) p = i;
    }
    return p;
  };
  const double sfmin = std::numeric_limits<double>::min();
  auto scale_below = [&](int col) {
    const double d = a[col][col];
    if (std::abs(d) >= sfmin) {
      const double r = 1.0 / d;
      for (int i = col + 1; i < 3; ++i) a[i][col] = a[i][col] * r;
    } else {
      for (int i = col + 1; i < 3; ++i) a[i][col] = a[i][col] / d;
    }
  };
  // dgetrf2: column 0, then the trailing 2x2 (recursively: column 1, then 1x1).
  swap_rows(0, pivot(0));
  if (a[0][0] == 0) return false;
  scale_below(0);
  for (int j = 1; j < 3; ++j) {  // dgemm: C(i,j) += (-A12(j)) * A21(i).
    const double t = -a[0][j];
    for (int i = 1; i < 3; ++i) a[i][j] = a[i][j] + t * a[i][0];
  }
  swap_rows(1, pivot(1));
  if (a[1][1] == 0) return false;
  scale_below(1);
  {
    const double t = -a[1][2];
    a[2][2] = a[2][2] + t * a[2][1];
  }
  if (a[2][2] == 0) return false;
  // dgetrs: B = P * I, then unit-lower and upper triangular solves (dtrsm).
  double b[3][3];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) b[i][j] = (perm[i] == j) ? 1.0 : 0.0;
  }
  for (int j = 0; j < 3; ++j) {
    for (int k = 0; k < 3; ++k) {
      if (b[k][j] != 0) {
        for (int i = k + 1; i < 3; ++i) b[i][j] = b[i][j] - b[k][j] * a[i][k];
      }
    }
    for (int k = 2; k >= 0; --k) {
      if (b[k][j] != 0) {
        b[k][j] = b[k][j] / a[k][k];
        for (int i = 0; i < k; ++i) b[i][j] = b[i][j] - b[k][j] * a[i][k];
      }
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) (*inverse)(i, j) = b[i][j];
  }
  return true;
}

cv::Point2d ApplyTransform(const cv::Matx33d& m, const cv::Point2d& p) {
  const double x = m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2);
  const double y = m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2);
  const double z = m(2, 0) * p.x + m(2, 1) * p.y + m(2, 2);
  return {x / z, y / z};
}

namespace {

// skimage's bilinear sample (order=1, cval=0): corners outside the image
// count as 0.
inline double Bilinear(double tl, double tr, double bl, double br, double dr, double dc) {
  const double top = (1 - dc) * tl + dc * tr;
  const double bottom = (1 - dc) * bl + dc * br;
  return (1 - dr) * top + dr * bottom;
}

// skimage's clip to the input's range (unless 0 lies outside it and the
// value is 0), then the uint8 conversion.
inline uint8_t Finish(double v, double lo, double hi, bool preserve_zero, WarpRounding rounding) {
  if (!(preserve_zero && v == 0.0)) v = std::min(std::max(v, lo), hi);
  const double scaled = v * 255;
  if (rounding == WarpRounding::kTruncateLikeReference) return static_cast<uint8_t>(scaled);
  return static_cast<uint8_t>(std::min(255.0, std::floor(scaled + 0.5)));
}

// One output row of an affine warp, in three passes that the compiler
// vectorises where it can: sample positions, corner values (a gather), then
// the arithmetic over all the row's values. Every value goes through exactly
// the operations of Bilinear and Finish, in the same order (this file is
// compiled without FMA contraction), so the result is bit-identical to the
// one-sample-at-a-time loop.
class AffineRowWarper {
 public:
  AffineRowWarper(const cv::Mat& rgb, const cv::Matx33d& m, const double* f, double lo, double hi,
                  bool preserve_zero, WarpRounding rounding, int width)
      : rgb_(rgb), m_(m), f_(f), lo_(lo), hi_(hi), preserve_zero_(preserve_zero),
        rounding_(rounding), width_(width), dr_(width), dc_(width), r0_(width), r1_(width),
        c0_(width), c1_(width), tl_(3 * width), tr_(3 * width), bl_(3 * width),
        br_(3 * width), dr3_(3 * width), dc3_(3 * width) {}

  void Row(int r, uint8_t* out) {
    const int n = width_;
    const double rows = rgb_.rows, cols = rgb_.cols;
    const double m00 = m_(0, 0), m01 = m_(0, 1), m02 = m_(0, 2);
    const double m10 = m_(1, 0), m11 = m_(1, 1), m12 = m_(1, 2);
    const double rd = r;
    double* __restrict dr = dr_.data();
    double* __restrict dc = dc_.data();
    int* __restrict r0 = r0_.data();
    int* __restrict r1 = r1_.data();
    int* __restrict c0 = c0_.data();
    int* __restrict c1 = c1_.data();
    for (int c = 0; c < n; ++c) {
      const double cd = c;
      const double sx = m00 * cd + m01 * rd + m02;
      const double sy = m10 * cd + m11 * rd + m12;
      const double fr = std::floor(sy), fc = std::floor(sx);
      // sample - floor(sample) is the reference's `sample - int(floor)`
      // for any position that matters (|sample| < 2^53).
      dr[c] = sy - fr;
      dc[c] = sx - fc;
      // Indices clamped to [-1, size]: the same in/out decision, no overflow.
      r0[c] = static_cast<int>(std::min(std::max(fr, -1.0), rows));
      c0[c] = static_cast<int>(std::min(std::max(fc, -1.0), cols));
      r1[c] = static_cast<int>(std::min(std::max(std::ceil(sy), -1.0), rows));
      c1[c] = static_cast<int>(std::min(std::max(std::ceil(sx), -1.0), cols));
    }
    const int irows = rgb_.rows, icols = rgb_.cols;
    for (int c = 0; c < n; ++c) {
      const bool r0in = r0[c] >= 0 && r0[c] < irows, r1in = r1[c] >= 0 && r1[c] < irows;
      const bool c0in = c0[c] >= 0 && c0[c] < icols, c1in = c1[c] >= 0 && c1[c] < icols;
      const uint8_t* p00 = (r0in && c0in) ? rgb_.ptr<uint8_t>(r0[c]) + c0[c] * 3 : kZero;
      const uint8_t* p01 = (r0in && c1in) ? rgb_.ptr<uint8_t>(r0[c]) + c1[c] * 3 : kZero;
      const uint8_t* p10 = (r1in && c0in) ? rgb_.ptr<uint8_t>(r1[c]) + c0[c] * 3 : kZero;
      const uint8_t* p11 = (r1in && c1in) ? rgb_.ptr<uint8_t>(r1[c]) + c1[c] * 3 : kZero;
      for (int ch = 0; ch < 3; ++ch) {
        // A corner outside reads the zero pixel: f[0] = 0.0, the
        // reference's cval.
        tl_[3 * c + ch] = f_[p00[ch]];
        tr_[3 * c + ch] = f_[p01[ch]];
        bl_[3 * c + ch] = f_[p10[ch]];
        br_[3 * c + ch] = f_[p11[ch]];
        dr3_[3 * c + ch] = dr[c];
        dc3_[3 * c + ch] = dc[c];
      }
    }
    const int m = 3 * n;
    const double* __restrict tl = tl_.data();
    const double* __restrict tr = tr_.data();
    const double* __restrict bl = bl_.data();
    const double* __restrict br = br_.data();
    const double* __restrict dr3 = dr3_.data();
    const double* __restrict dc3 = dc3_.data();
    const double lo = lo_, hi = hi_;
    if (preserve_zero_) {
      if (rounding_ == WarpRounding::kTruncateLikeReference) {
        for (int j = 0; j < m; ++j) {
          double v = Bilinear(tl[j], tr[j], bl[j], br[j], dr3[j], dc3[j]);
          v = v == 0.0 ? v : std::min(std::max(v, lo), hi);
          out[j] = static_cast<uint8_t>(static_cast<int>(v * 255));
        }
      } else {
        for (int j = 0; j < m; ++j) {
          double v = Bilinear(tl[j], tr[j], bl[j], br[j], dr3[j], dc3[j]);
          v = v == 0.0 ? v : std::min(std::max(v, lo), hi);
          out[j] = static_cast<uint8_t>(static_cast<int>(std::min(255.0, std::floor(v * 255 + 0.5))));
        }
      }
    } else {
      if (rounding_ == WarpRounding::kTruncateLikeReference) {
        for (int j = 0; j < m; ++j) {
          const double v =
              std::min(std::max(Bilinear(tl[j], tr[j], bl[j], br[j], dr3[j], dc3[j]), lo), hi);
          out[j] = static_cast<uint8_t>(static_cast<int>(v * 255));
        }
      } else {
        for (int j = 0; j < m; ++j) {
          const double v =
              std::min(std::max(Bilinear(tl[j], tr[j], bl[j], br[j], dr3[j], dc3[j]), lo), hi);
          out[j] = static_cast<uint8_t>(static_cast<int>(std::min(255.0, std::floor(v * 255 + 0.5))));
        }
      }
    }
  }

 private:
  static constexpr uint8_t kZeroPixel[3] = {0, 0, 0};
  static constexpr const uint8_t* kZero = kZeroPixel;
  const cv::Mat& rgb_;
  const cv::Matx33d m_;
  const double* f_;
  const double lo_, hi_;
  const bool preserve_zero_;
  const WarpRounding rounding_;
  const int width_;
  std::vector<double> dr_, dc_;
  std::vector<int> r0_, r1_, c0_, c1_;
  std::vector<double> tl_, tr_, bl_, br_, dr3_, dc3_;
};

}  // namespace

absl::StatusOr<cv::Mat> WarpSimilarity(const cv::Mat& rgb, const cv::Matx33d& matrix,
                                       cv::Size out_size, WarpRounding rounding) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    return absl::InvalidArgumentError("WarpSimilarity: expected a non-empty 8-bit RGB image");
  }
  if (out_size.width <= 0 || out_size.height <= 0) {
    return absl::InvalidArgumentError("WarpSimilarity: empty output size");
  }
  const double det = cv::determinant(matrix);
  cv::Matx33d hi;
  if (!std::isfinite(det) || std::abs(det) < 1e-12 || !InvertLikeNumpy(matrix, &hi)) {
    return absl::InvalidArgumentError("WarpSimilarity: the transform is not invertible");
  }
  for (int i = 0; i < 9; ++i) {
    if (!std::isfinite(hi.val[i])) {
      return absl::InvalidArgumentError("WarpSimilarity: the transform is not invertible");
    }
  }
  // skimage converts uint8 to float64 by multiplying with 1/255.
  double f[256];
  const double inv255 = 1.0 / 255.0;
  for (int i = 0; i < 256; ++i) f[i] = static_cast<double>(i) * inv255;
  double min_v, max_v;
  cv::minMaxLoc(rgb.reshape(1), &min_v, &max_v);
  const double lo = f[static_cast<int>(min_v)];
  const double hi_v = f[static_cast<int>(max_v)];
  const bool preserve_zero = !(lo <= 0.0 && 0.0 <= hi_v);
  const int rows = rgb.rows, cols = rgb.cols;
  const bool affine = hi(2, 0) == 0 && hi(2, 1) == 0 && hi(2, 2) == 1;

  cv::Mat out(out_size, CV_8UC3);
  if (affine) {
    // Rows in parallel on OpenMP's threads, the pool LibTorch's at::parallel_for
    // uses (omp_set_num_threads / at::set_num_threads): in the crop flows the
    // warp runs right after MTCNN, whose idle OpenMP workers still spin for a
    // while and would take a core from another pool (OpenCV's: 2x slower on 2
    // cores). Each sample is independent.
    const int height = out_size.height;
#pragma omp parallel
    {
      AffineRowWarper warper(rgb, hi, f, lo, hi_v, preserve_zero, rounding, out_size.width);
#pragma omp for schedule(static)
      for (int r = 0; r < height; ++r) warper.Row(r, out.ptr<uint8_t>(r));
    }
    return out;
  }
  // Projective transforms (not used by the flows): one sample at a time.
  cv::parallel_for_(cv::Range(0, out_size.height), [&](const cv::Range& range) {
    for (int r = range.start; r < range.end; ++r) {
      uint8_t* o = out.ptr<uint8_t>(r);
      for (int c = 0; c < out_size.width; ++c) {
        double sx = hi(0, 0) * c + hi(0, 1) * r + hi(0, 2);
        double sy = hi(1, 0) * c + hi(1, 1) * r + hi(1, 2);
        const double z = hi(2, 0) * c + hi(2, 1) * r + hi(2, 2);
        sx /= z;
        sy /= z;
        const double fr = std::floor(sy), fc = std::floor(sx);
        const long r0 = static_cast<long>(fr), c0 = static_cast<long>(fc);
        const long r1 = static_cast<long>(std::ceil(sy)), c1 = static_cast<long>(std::ceil(sx));
        const double dr = sy - static_cast<double>(r0);
        const double dc = sx - static_cast<double>(c0);
        const bool r0in = r0 >= 0 && r0 < rows, r1in = r1 >= 0 && r1 < rows;
        const bool c0in = c0 >= 0 && c0 < cols, c1in = c1 >= 0 && c1 < cols;
        const uint8_t* p00 = (r0in && c0in) ? rgb.ptr<uint8_t>(r0) + c0 * 3 : nullptr;
        const uint8_t* p01 = (r0in && c1in) ? rgb.ptr<uint8_t>(r0) + c1 * 3 : nullptr;
        const uint8_t* p10 = (r1in && c0in) ? rgb.ptr<uint8_t>(r1) + c0 * 3 : nullptr;
        const uint8_t* p11 = (r1in && c1in) ? rgb.ptr<uint8_t>(r1) + c1 * 3 : nullptr;
        for (int ch = 0; ch < 3; ++ch) {
          const double tl = p00 ? f[p00[ch]] : 0.0;
          const double tr = p01 ? f[p01[ch]] : 0.0;
          const double bl = p10 ? f[p10[ch]] : 0.0;
          const double br = p11 ? f[p11[ch]] : 0.0;
          o[c * 3 + ch] = Finish(Bilinear(tl, tr, bl, br, dr, dc), lo, hi_v, preserve_zero,
                                 rounding);
        }
      }
    }
  });
  return out;
}

}  // namespace dmue::preprocessing
