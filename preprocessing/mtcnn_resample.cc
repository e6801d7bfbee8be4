// The area resampler (pyramid levels and R-/O-Net crops) and the P-Net level
// windows of DetectInRegion; see mtcnn_internal.h.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "preprocessing/mtcnn_internal.h"

namespace dmue::preprocessing {
namespace {

// Arithmetic in this file mirrors the reference's float32 tensor ops one
// rounding at a time; it is compiled with -ffp-contract=off so that no
// multiply-add is fused.

// torch's adaptive pooling bin bounds.
inline int64_t StartIndex(int64_t a, int64_t b, int64_t c) {
  return (a / b) * c + ((a % b) * c) / b;
}
inline int64_t EndIndex(int64_t a, int64_t b, int64_t c) {
  return 1 + ((a + 1) * c - 1) / b;
}

// Output rows [oh_begin, oh_end) x cols [ow_begin, ow_end) of
// AreaResampleNormalized (an out_h x out_w resampling of rows [r0, r1) x cols
// [c0, c1) of `rgb`), written to `out` as rows of (ow_end - ow_begin) pixels
// starting with row oh_begin. Every value depends only on its own bin, so a
// window of the level is bit-identical to the same part of the whole level.
void AreaResampleRows(const cv::Mat& rgb, int r0, int r1, int c0, int c1, int out_h, int out_w,
                      int oh_begin, int oh_end, int ow_begin, int ow_end, float* out) {
  const int in_h = r1 - r0;
  const int in_w = c1 - c0;
  const int n_w = ow_end - ow_begin;
  std::vector<int> iw0s(n_w), iw1s(n_w);
  std::vector<float> kws(static_cast<size_t>(n_w) * 3);
  for (int k = 0; k < n_w; ++k) {
    const int ow = ow_begin + k;
    iw0s[k] = static_cast<int>(StartIndex(ow, out_w, in_w));
    iw1s[k] = static_cast<int>(EndIndex(ow, out_w, in_w));
    for (int c = 0; c < 3; ++c) kws[k * 3 + c] = static_cast<float>(iw1s[k] - iw0s[k]);
  }
  // Input columns [iw_lo, iw_hi) feed the window (bins are increasing).
  const int iw_lo = n_w > 0 ? iw0s[0] : 0;
  const int iw_hi = n_w > 0 ? iw1s[n_w - 1] : 0;
  std::vector<uint32_t> colsum(static_cast<size_t>(iw_hi - iw_lo) * 3);
  for (int oh = oh_begin; oh < oh_end; ++oh) {
    const int ih0 = static_cast<int>(StartIndex(oh, out_h, in_h));
    const int ih1 = static_cast<int>(EndIndex(oh, out_h, in_h));
    const int kh = ih1 - ih0;
    std::fill(colsum.begin(), colsum.end(), 0u);
    uint32_t* cs = colsum.data();
    const int n = (iw_hi - iw_lo) * 3;
    for (int ih = ih0; ih < ih1; ++ih) {
      const uint8_t* row = rgb.ptr<uint8_t>(r0 + ih) + (c0 + iw_lo) * 3;
      for (int i = 0; i < n; ++i) cs[i] += row[i];
    }
    float* o = out + static_cast<size_t>(oh - oh_begin) * n_w * 3;
    // Integer bin sums first (cheap), then one vectorisable pass for the
    // divisions and the normalisation.
    for (int k = 0; k < n_w; ++k) {
      const int iw0 = iw0s[k];
      const int iw1 = iw1s[k];
      const int kw = iw1 - iw0;
      // Sums of integers below 2^24 are exact in float whatever the order,
      // so the integer sum equals torch's sequential float sum.
      const bool exact = int64_t{kh} * kw * 255 < (int64_t{1} << 24);
      for (int c = 0; c < 3; ++c) {
        float sum;
        if (exact) {
          uint32_t s = 0;
          for (int iw = iw0; iw < iw1; ++iw) s += cs[(iw - iw_lo) * 3 + c];
          sum = static_cast<float>(s);
        } else {
          sum = 0.0f;
          for (int ih = ih0; ih < ih1; ++ih) {
            const uint8_t* row = rgb.ptr<uint8_t>(r0 + ih) + c0 * 3;
            for (int iw = iw0; iw < iw1; ++iw) sum += static_cast<float>(row[iw * 3 + c]);
          }
        }
        o[k * 3 + c] = sum;
      }
    }
    const float fkh = static_cast<float>(kh);
    const float* fkw = kws.data();
    const int m = n_w * 3;
    for (int j = 0; j < m; ++j) {
      const float v = o[j] / fkh / fkw[j];
      o[j] = (v - 127.5f) * 0.0078125f;
    }
  }
}

}  // namespace

at::Tensor ChannelsLastBuffer(int64_t n, int64_t h, int64_t w) {
  // Sizes [n, 3, h, w], channels-last strides, as the reference's tensors.
  return at::empty({n, h, w, 3}, at::kFloat).permute({0, 3, 1, 2});
}

at::Tensor CropBatch(const cv::Mat& rgb, const std::vector<CropRect>& rects, size_t begin,
                     size_t end, int size) {
  const int64_t n = static_cast<int64_t>(end - begin);
  at::Tensor batch = ChannelsLastBuffer(n, size, size);
  float* data = batch.data_ptr<float>();
  const size_t per = static_cast<size_t>(size) * size * 3;
  at::parallel_for(0, n, 8, [&](int64_t b0, int64_t b1) {
    for (int64_t k = b0; k < b1; ++k) {
      const CropRect& r = rects[begin + k];
      AreaResampleRows(rgb, r.y - 1, r.ey, r.x - 1, r.ex, size, size, 0, size, 0, size,
                       data + per * k);
    }
  });
  return batch;
}

void AreaResampleNormalized(const cv::Mat& rgb, int r0, int r1, int c0, int c1, int out_h,
                            int out_w, float* out) {
  AreaResampleWindowNormalized(rgb, r0, r1, c0, c1, out_h, out_w, 0, out_h, 0, out_w, out);
}

void AreaResampleWindowNormalized(const cv::Mat& rgb, int r0, int r1, int c0, int c1, int out_h,
                                  int out_w, int oh_begin, int oh_end, int ow_begin, int ow_end,
                                  float* out) {
  const size_t row_floats = static_cast<size_t>(ow_end - ow_begin) * 3;
  at::parallel_for(oh_begin, oh_end, 16, [&](int64_t b, int64_t e) {
    AreaResampleRows(rgb, r0, r1, c0, c1, out_h, out_w, static_cast<int>(b),
                     static_cast<int>(e), ow_begin, ow_end,
                     out + static_cast<size_t>(b - oh_begin) * row_floats);
  });
}

namespace {

// Level indices [*begin, *end) (of `out`) whose P-Net windows can reach input
// coordinates [a0, a1) (of `in`), see PnetLevelWindow.
void PnetLevelRange(double a0, double a1, int in, int out, int* begin, int* end) {
  a0 = std::max(a0, 0.0);
  a1 = std::min(a1, static_cast<double>(in));
  if (!(a1 > a0)) {
    *begin = *end = 0;
    return;
  }
  // Level pixel j averages input bin [floor(j*in/out), ceil((j+1)*in/out)):
  // a superset of the level pixels whose bins intersect [a0, a1), with a
  // pixel to spare on each side against rounding.
  const double ratio = static_cast<double>(out) / in;
  int64_t j0 = static_cast<int64_t>(std::floor((a0 - 1) * ratio)) - 1;
  int64_t j1 = static_cast<int64_t>(std::ceil((a1 + 1) * ratio)) + 1;
  // Every 12-pixel window [2c, 2c + 12) intersecting [j0, j1) has
  // 2c >= j0 - 11 and 2c + 12 <= j1 + 11.
  int64_t b = std::max<int64_t>(0, j0 - 12);
  b -= b % 2;  // P-Net's stride-2 grid.
  int64_t e = std::min<int64_t>(out, j1 + 12);
  // An odd length would end in a partial pooling window that the whole
  // level does not have (unless the level ends there too).
  if (e < out && (e - b) % 2 != 0) ++e;
  if (e < b) e = b;
  *begin = static_cast<int>(b);
  *end = static_cast<int>(e);
}

}  // namespace

LevelWindow PnetLevelWindow(int in_h, int in_w, int out_h, int out_w, const cv::Rect2d& region) {
  LevelWindow w;
  PnetLevelRange(region.y, region.y + region.height, in_h, out_h, &w.row0, &w.row1);
  PnetLevelRange(region.x, region.x + region.width, in_w, out_w, &w.col0, &w.col1);
  return w;
}

}  // namespace dmue::preprocessing
