#include "preprocessing/similarity_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>

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
  // Rows in parallel (OpenCV's thread pool); each sample is independent.
  cv::parallel_for_(cv::Range(0, out_size.height), [&](const cv::Range& range) {
    for (int r = range.start; r < range.end; ++r) {
      uint8_t* o = out.ptr<uint8_t>(r);
      for (int c = 0; c < out_size.width; ++c) {
        double sx = hi(0, 0) * c + hi(0, 1) * r + hi(0, 2);
        double sy = hi(1, 0) * c + hi(1, 1) * r + hi(1, 2);
        if (!affine) {
          const double z = hi(2, 0) * c + hi(2, 1) * r + hi(2, 2);
          sx /= z;
          sy /= z;
        }
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
          const double top = (1 - dc) * tl + dc * tr;
          const double bottom = (1 - dc) * bl + dc * br;
          double v = (1 - dr) * top + dr * bottom;
          if (!(preserve_zero && v == 0.0)) v = std::min(std::max(v, lo), hi_v);
          const double scaled = v * 255;
          if (rounding == WarpRounding::kTruncateLikeReference) {
            o[c * 3 + ch] = static_cast<uint8_t>(scaled);
          } else {
            o[c * 3 + ch] = static_cast<uint8_t>(std::min(255.0, std::floor(scaled + 0.5)));
          }
        }
      }
    }
  });
  return out;
}

}  // namespace dmue::preprocessing
