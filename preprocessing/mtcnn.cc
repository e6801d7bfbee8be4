#include "preprocessing/mtcnn.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/ConvUtils.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/io/torch_checkpoint.h"
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

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Box {
  float x1, y1, x2, y2, score;
};

// torchvision.ops.nms (CPU kernel of 0.14): stable descending score order,
// area without +1, suppress when IoU > threshold (compared in double).
std::vector<int> NmsTorchvision(const std::vector<Box>& b, double threshold) {
  const int n = static_cast<int>(b.size());
  std::vector<float> areas(n);
  for (int i = 0; i < n; ++i) areas[i] = (b[i].x2 - b[i].x1) * (b[i].y2 - b[i].y1);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int c) { return b[a].score > b[c].score; });
  std::vector<char> suppressed(n, 0);
  std::vector<int> keep;
  for (int oi = 0; oi < n; ++oi) {
    const int i = order[oi];
    if (suppressed[i]) continue;
    keep.push_back(i);
    const Box& bi = b[i];
    const float iarea = areas[i];
    for (int oj = oi + 1; oj < n; ++oj) {
      const int j = order[oj];
      if (suppressed[j]) continue;
      const float xx1 = std::max(bi.x1, b[j].x1);
      const float yy1 = std::max(bi.y1, b[j].y1);
      const float xx2 = std::min(bi.x2, b[j].x2);
      const float yy2 = std::min(bi.y2, b[j].y2);
      const float w = std::max(0.0f, xx2 - xx1);
      const float h = std::max(0.0f, yy2 - yy1);
      const float inter = w * h;
      const float ovr = inter / (iarea + areas[j] - inter);
      if (static_cast<double>(ovr) > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

// numpy's argsort (kind="quicksort", numpy 1.24: introsort with insertion
// sort below 17 elements) of float32 keys, ascending; reproduced so that ties
// come out in the reference's order.
bool NpLess(float a, float b) { return a < b || (b != b && a == a); }

void NpHeapsort(const float* v, int64_t* tosort, int64_t n) {
  int64_t* a = tosort - 1;  // 1-based.
  int64_t i, j, l, tmp;
  for (l = n >> 1; l > 0; --l) {
    tmp = a[l];
    for (i = l, j = l << 1; j <= n;) {
      if (j < n && NpLess(v[a[j]], v[a[j + 1]])) j += 1;
      if (NpLess(v[tmp], v[a[j]])) {
        a[i] = a[j];
        i = j;
        j += j;
      } else {
        break;
      }
    }
    a[i] = tmp;
  }
  for (; n > 1;) {
    tmp = a[n];
    a[n] = a[1];
    n -= 1;
    for (i = 1, j = 2; j <= n;) {
      if (j < n && NpLess(v[a[j]], v[a[j + 1]])) j++;
      if (NpLess(v[tmp], v[a[j]])) {
        a[i] = a[j];
        i = j;
        j += j;
      } else {
        break;
      }
    }
    a[i] = tmp;
  }
}

std::vector<int64_t> NpArgsort(const std::vector<float>& keys) {
  const int64_t num = static_cast<int64_t>(keys.size());
  std::vector<int64_t> idx(num);
  std::iota(idx.begin(), idx.end(), 0);
  if (num < 2) return idx;
  const float* v = keys.data();
  int64_t* pl = idx.data();
  int64_t* pr = pl + num - 1;
  std::vector<int64_t*> stack;
  std::vector<int> depth;
  int msb = 0;
  for (uint64_t u = static_cast<uint64_t>(num); u > 1; u >>= 1) ++msb;
  int cdepth = msb * 2;
  constexpr int64_t kSmall = 16;
  for (;;) {
    if (cdepth < 0) {
      NpHeapsort(v, pl, pr - pl + 1);
    } else {
      while ((pr - pl) > kSmall) {
        int64_t* pm = pl + ((pr - pl) >> 1);
        if (NpLess(v[*pm], v[*pl])) std::swap(*pm, *pl);
        if (NpLess(v[*pr], v[*pm])) std::swap(*pr, *pm);
        if (NpLess(v[*pm], v[*pl])) std::swap(*pm, *pl);
        const float vp = v[*pm];
        int64_t* pi = pl;
        int64_t* pj = pr - 1;
        std::swap(*pm, *pj);
        for (;;) {
          do ++pi; while (NpLess(v[*pi], vp));
          do --pj; while (NpLess(vp, v[*pj]));
          if (pi >= pj) break;
          std::swap(*pi, *pj);
        }
        int64_t* pk = pr - 1;
        std::swap(*pi, *pk);
        if (pi - pl < pr - pi) {
          stack.push_back(pi + 1);
          stack.push_back(pr);
          pr = pi - 1;
        } else {
          stack.push_back(pl);
          stack.push_back(pi - 1);
          pl = pi + 1;
        }
        depth.push_back(--cdepth);
      }
      for (int64_t* pi = pl + 1; pi <= pr; ++pi) {
        const int64_t vi = *pi;
        const float vp = v[vi];
        int64_t* pj = pi;
        int64_t* pk = pi - 1;
        while (pj > pl && NpLess(vp, v[*pk])) *pj-- = *pk--;
        *pj = vi;
      }
    }
    if (stack.empty()) break;
    pr = stack.back();
    stack.pop_back();
    pl = stack.back();
    stack.pop_back();
    cdepth = depth.back();
    depth.pop_back();
  }
  return idx;
}

// facenet-pytorch nms_numpy(method="Min"): areas and intersections with +1,
// overlap = inter / min(area_i, area_j), kept when overlap <= threshold
// (compared in float32 under numpy 1.24's value-based casting).
std::vector<int> NmsNumpyMin(const std::vector<Box>& b, float threshold) {
  const int n = static_cast<int>(b.size());
  std::vector<float> area(n), scores(n);
  for (int i = 0; i < n; ++i) {
    area[i] = ((b[i].x2 - b[i].x1) + 1.0f) * ((b[i].y2 - b[i].y1) + 1.0f);
    scores[i] = b[i].score;
  }
  const std::vector<int64_t> sorted = NpArgsort(scores);
  std::vector<int> order(sorted.begin(), sorted.end());
  std::vector<int> pick;
  while (!order.empty()) {
    const int i = order.back();
    pick.push_back(i);
    std::vector<int> rest;
    rest.reserve(order.size());
    for (size_t t = 0; t + 1 < order.size(); ++t) {
      const int j = order[t];
      const float xx1 = std::max(b[i].x1, b[j].x1);
      const float yy1 = std::max(b[i].y1, b[j].y1);
      const float xx2 = std::min(b[i].x2, b[j].x2);
      const float yy2 = std::min(b[i].y2, b[j].y2);
      const float w = std::max(0.0f, (xx2 - xx1) + 1.0f);
      const float h = std::max(0.0f, (yy2 - yy1) + 1.0f);
      const float inter = w * h;
      const float o = inter / std::min(area[i], area[j]);
      if (o <= threshold) rest.push_back(j);
    }
    order = std::move(rest);
  }
  return pick;
}

// rerec: square the box around its centre, l = max(w, h) with w = x2 - x1.
void Rerec(Box& b) {
  const float h = b.y2 - b.y1;
  const float w = b.x2 - b.x1;
  const float l = std::max(w, h);
  b.x1 = (b.x1 + w * 0.5f) - l * 0.5f;
  b.y1 = (b.y1 + h * 0.5f) - l * 0.5f;
  b.x2 = b.x1 + l;
  b.y2 = b.y1 + l;
}

// bbreg with w = x2 - x1 + 1.
void Bbreg(Box& b, const float* reg) {
  const float w = (b.x2 - b.x1) + 1.0f;
  const float h = (b.y2 - b.y1) + 1.0f;
  const float b1 = b.x1 + reg[0] * w;
  const float b2 = b.y1 + reg[1] * h;
  const float b3 = b.x2 + reg[2] * w;
  const float b4 = b.y2 + reg[3] * h;
  b.x1 = b1;
  b.y1 = b2;
  b.x2 = b3;
  b.y2 = b4;
}

// The reference's pad(): truncated, 1-based inclusive crop bounds.
struct CropRect {
  int y, ey, x, ex;
  bool empty() const { return !(ey > y - 1 && ex > x - 1); }
};

CropRect Pad(const Box& b, int w, int h) {
  CropRect r;
  r.x = static_cast<int>(std::trunc(b.x1));
  r.y = static_cast<int>(std::trunc(b.y1));
  r.ex = static_cast<int>(std::trunc(b.x2));
  r.ey = static_cast<int>(std::trunc(b.y2));
  if (r.x < 1) r.x = 1;
  if (r.y < 1) r.y = 1;
  if (r.ex > w) r.ex = w;
  if (r.ey > h) r.ey = h;
  return r;
}

at::Tensor ChannelsLastBuffer(int64_t n, int64_t h, int64_t w) {
  // Sizes [n, 3, h, w], channels-last strides, as the reference's tensors.
  return at::empty({n, h, w, 3}, at::kFloat).permute({0, 3, 1, 2});
}

// Resamples the crops of `rects` to size x size into one channels-last batch.
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

absl::Status CheckWeights(const NetWeights& w, absl::string_view net,
                          const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes) {
  for (const auto& [name, shape] : shapes) {
    auto it = w.find(name);
    if (it == w.end()) {
      return absl::InvalidArgumentError(absl::StrCat(net, ": missing weight '", name, "'"));
    }
    if (it->second.sizes().vec() != shape || it->second.scalar_type() != at::kFloat) {
      return absl::InvalidArgumentError(absl::StrCat(net, ": weight '", name, "' has shape ",
                                                     c10::str(it->second.sizes()), " ",
                                                     c10::toString(it->second.scalar_type()),
                                                     ", expected float ", c10::str(at::IntArrayRef(shape))));
    }
  }
  return absl::OkStatus();
}

void PreluBlocks(float* __restrict d, int64_t n, const float* __restrict t, int64_t block,
                 int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    float* __restrict v = d + b * block;
    const int64_t len = std::min(block, n - b * block);
    for (int64_t j = 0; j < len; ++j) v[j] = v[j] > 0 ? v[j] : t[j] * v[j];
  }
}

// PReLU in place: y = y > 0 ? y : a[c] * y, torch's formula (one multiply,
// so bit-identical), in one vectorised pass over the layout the tensor
// already has (torch 1.13's prelu is slow on channels-last tensors).
void PreluInPlace(at::Tensor& y, const at::Tensor& weight) {
  const int64_t c = weight.numel();
  const float* a = weight.data_ptr<float>();
  if (y.dim() == 2 ? y.is_contiguous() : y.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    // Channels innermost: process the flat buffer in blocks of kPixels
    // pixels against the weights tiled kPixels times, so that the loop is
    // one long, vectorisable run.
    constexpr int64_t kPixels = 64;
    const int64_t block = kPixels * c;
    std::vector<float> tiled(static_cast<size_t>(block));
    for (int64_t j = 0; j < block; ++j) tiled[j] = a[j % c];
    float* d = y.data_ptr<float>();
    const int64_t n = y.numel();
    const int64_t blocks = (n + block - 1) / block;
    const float* t = tiled.data();
    at::parallel_for(0, blocks, 16, [d, n, t, block](int64_t b0, int64_t b1) {
      // Everything by value: through captured references the compiler would
      // assume the stores may alias them and not vectorise.
      PreluBlocks(d, n, t, block, b0, b1);
    });
    return;
  }
  if (!y.is_contiguous()) y = y.contiguous();
  float* d = y.data_ptr<float>();
  const int64_t plane = y.dim() == 4 ? y.size(2) * y.size(3) : 1;
  const int64_t planes = y.numel() / plane;
  at::parallel_for(0, planes, 1, [d, a, c, plane](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float w = a[q % c];
      float* __restrict v = d + q * plane;
      for (int64_t k = 0; k < plane; ++k) v[k] = v[k] > 0 ? v[k] : w * v[k];
    }
  });
}

at::Tensor ConvPrelu(const at::Tensor& x, const NetWeights& w, const std::string& conv,
                     const std::string& prelu) {
  at::Tensor y = at::conv2d(x, w.at(conv + ".weight"), w.at(conv + ".bias"));
  PreluInPlace(y, w.at(prelu + ".weight"));
  return y;
}

at::Tensor Linear(const at::Tensor& x, const NetWeights& w, const std::string& name) {
  return at::linear(x, w.at(name + ".weight"), w.at(name + ".bias"));
}

void PoolRows(const float* __restrict in, float* __restrict o, int64_t c, int64_t h, int64_t w,
              int64_t oh, int64_t ow, int k, int s, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / oh, y = r % oh;
    const int64_t h0 = y * s, h1 = std::min<int64_t>(h0 + k, h);
    for (int64_t xo = 0; xo < ow; ++xo) {
      const int64_t w0 = xo * s, w1 = std::min<int64_t>(w0 + k, w);
      float* __restrict dst = o + ((b * oh + y) * ow + xo) * c;
      const float* __restrict first = in + ((b * h + h0) * w + w0) * c;
      for (int64_t ch = 0; ch < c; ++ch) dst[ch] = first[ch];
      for (int64_t yy = h0; yy < h1; ++yy) {
        for (int64_t xx = w0; xx < w1; ++xx) {
          const float* __restrict src = in + ((b * h + yy) * w + xx) * c;
          for (int64_t ch = 0; ch < c; ++ch) {
            const float v = src[ch];
            dst[ch] = (v > dst[ch] || v != v) ? v : dst[ch];
          }
        }
      }
    }
  }
}

// max_pool2d(k, s, ceil_mode=True) without padding. On channels-last input
// it is computed here (max is exact, so bit-identical): torch 1.13 always
// computes the argmax indices too, which costs as much as a convolution.
at::Tensor Pool(const at::Tensor& x, int k, int s) {
  if (x.dim() != 4 || !x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::max_pool2d(x, {k, k}, {s, s}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
  }
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto out_size = [&](int64_t in) {
    int64_t o = (in - k + s - 1) / s + 1;  // ceil((in - k) / s) + 1
    if ((o - 1) * s >= in) --o;
    return o;
  };
  const int64_t oh = out_size(h), ow = out_size(w);
  at::Tensor out = at::empty({n, oh, ow, c}, x.options());
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, n * oh, 4, [=](int64_t r0, int64_t r1) {
    PoolRows(in, o, c, h, w, oh, ow, k, s, r0, r1);
  });
  return out.permute({0, 3, 1, 2});
}

}  // namespace

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

std::vector<double> PyramidScales(int64_t height, int64_t width, double min_face_size,
                                  double factor) {
  const double m = 12.0 / min_face_size;
  double minl = static_cast<double>(std::min(height, width)) * m;
  double scale = m;
  std::vector<double> scales;
  while (minl >= 12) {
    scales.push_back(scale);
    scale = scale * factor;
    minl = minl * factor;
  }
  return scales;
}

absl::StatusOr<std::unique_ptr<MtcnnImpl>> MtcnnImpl::Create(NetWeights pnet, NetWeights rnet,
                                                             NetWeights onet,
                                                             const MtcnnOptions& options) {
  absl::Status s = CheckWeights(pnet, "P-Net",
                                {{"conv1.weight", {10, 3, 3, 3}},
                                 {"conv1.bias", {10}},
                                 {"prelu1.weight", {10}},
                                 {"conv2.weight", {16, 10, 3, 3}},
                                 {"conv2.bias", {16}},
                                 {"prelu2.weight", {16}},
                                 {"conv3.weight", {32, 16, 3, 3}},
                                 {"conv3.bias", {32}},
                                 {"prelu3.weight", {32}},
                                 {"conv4_1.weight", {2, 32, 1, 1}},
                                 {"conv4_1.bias", {2}},
                                 {"conv4_2.weight", {4, 32, 1, 1}},
                                 {"conv4_2.bias", {4}}});
  if (!s.ok()) return s;
  s = CheckWeights(rnet, "R-Net",
                   {{"conv1.weight", {28, 3, 3, 3}},
                    {"conv1.bias", {28}},
                    {"prelu1.weight", {28}},
                    {"conv2.weight", {48, 28, 3, 3}},
                    {"conv2.bias", {48}},
                    {"prelu2.weight", {48}},
                    {"conv3.weight", {64, 48, 2, 2}},
                    {"conv3.bias", {64}},
                    {"prelu3.weight", {64}},
                    {"dense4.weight", {128, 576}},
                    {"dense4.bias", {128}},
                    {"prelu4.weight", {128}},
                    {"dense5_1.weight", {2, 128}},
                    {"dense5_1.bias", {2}},
                    {"dense5_2.weight", {4, 128}},
                    {"dense5_2.bias", {4}}});
  if (!s.ok()) return s;
  s = CheckWeights(onet, "O-Net",
                   {{"conv1.weight", {32, 3, 3, 3}},
                    {"conv1.bias", {32}},
                    {"prelu1.weight", {32}},
                    {"conv2.weight", {64, 32, 3, 3}},
                    {"conv2.bias", {64}},
                    {"prelu2.weight", {64}},
                    {"conv3.weight", {64, 64, 3, 3}},
                    {"conv3.bias", {64}},
                    {"prelu3.weight", {64}},
                    {"conv4.weight", {128, 64, 2, 2}},
                    {"conv4.bias", {128}},
                    {"prelu4.weight", {128}},
                    {"dense5.weight", {256, 1152}},
                    {"dense5.bias", {256}},
                    {"prelu5.weight", {256}},
                    {"dense6_1.weight", {2, 256}},
                    {"dense6_1.bias", {2}},
                    {"dense6_2.weight", {4, 256}},
                    {"dense6_2.bias", {4}},
                    {"dense6_3.weight", {10, 256}},
                    {"dense6_3.bias", {10}}});
  if (!s.ok()) return s;
  if (!(options.min_face_size > 0)) {
    return absl::InvalidArgumentError("MtcnnOptions.min_face_size must be > 0");
  }
  if (!(options.factor > 0 && options.factor < 1)) {
    return absl::InvalidArgumentError("MtcnnOptions.factor must be in (0, 1)");
  }
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError("MtcnnOptions.batch_size must be >= 1");
  }
  if (options.max_input_side != 0 && options.max_input_side < 12) {
    return absl::InvalidArgumentError("MtcnnOptions.max_input_side must be 0 or >= 12");
  }
  std::unique_ptr<MtcnnImpl> impl(new MtcnnImpl());
  auto contiguous = [](NetWeights w) {
    for (auto& [k, v] : w) v = v.contiguous();
    return w;
  };
  impl->p_ = contiguous(std::move(pnet));
  impl->r_ = contiguous(std::move(rnet));
  impl->o_ = contiguous(std::move(onet));
  impl->options_ = options;
  impl->pnet_heads_w_ =
      at::cat({impl->p_.at("conv4_1.weight"), impl->p_.at("conv4_2.weight")}, 0).contiguous();
  impl->pnet_heads_b_ = at::cat({impl->p_.at("conv4_1.bias"), impl->p_.at("conv4_2.bias")}, 0);
  return impl;
}

bool MtcnnImpl::PnetWindowIsExact(int64_t rows, int64_t cols, int64_t level_rows,
                                  int64_t level_cols) const {
  const at::MemoryFormat format =
      options_.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  // max_pool2d(2, 2, ceil_mode=True) after the first 3x3 convolution.
  auto pooled = [](int64_t in) {
    int64_t o = (in - 2 + 1) / 2 + 1;
    if ((o - 1) * 2 >= in) --o;
    return o;
  };
  const at::Tensor* weights[4] = {&p_.at("conv1.weight"), &p_.at("conv2.weight"),
                                  &p_.at("conv3.weight"), &pnet_heads_w_};
  const at::Tensor* biases[4] = {&p_.at("conv1.bias"), &p_.at("conv2.bias"),
                                 &p_.at("conv3.bias"), &pnet_heads_b_};
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{rows, cols}, {level_rows, level_cols}}) {
    if (h < 12 || w < 12) return false;
    const int64_t ph = pooled(h - 2), pw = pooled(w - 2);
    const std::array<int64_t, 4> in_c = {3, 10, 16, 32};
    const std::array<int64_t, 4> in_h = {h, ph, ph - 2, ph - 4};
    const std::array<int64_t, 4> in_w = {w, pw, pw - 2, pw - 4};
    for (int layer = 0; layer < 4; ++layer) {
      // Uninitialised, with the layout the nets see; only its shape is read.
      const at::Tensor input =
          at::empty({1, in_c[layer], in_h[layer], in_w[layer]}, at::TensorOptions(at::kFloat),
                    format);
      const at::native::ConvBackend backend = at::native::select_conv_backend(
          input, *weights[layer], *biases[layer], /*stride=*/{1, 1}, /*padding=*/{0, 0},
          /*dilation=*/{1, 1}, /*transposed=*/false, /*output_padding=*/{0, 0}, /*groups=*/1);
      if (backend != at::native::ConvBackend::Mkldnn) return false;
    }
  }
  return true;
}

std::pair<at::Tensor, at::Tensor> MtcnnImpl::Pnet(const at::Tensor& x) const {
  at::Tensor y = ConvPrelu(x, p_, "conv1", "prelu1");
  y = Pool(y, 2, 2);
  y = ConvPrelu(y, p_, "conv2", "prelu2");
  y = ConvPrelu(y, p_, "conv3", "prelu3");
  // Both 1x1 heads as one 6-channel convolution (one call instead of two).
  at::Tensor heads = at::conv2d(y, pnet_heads_w_, pnet_heads_b_);
  at::Tensor a = at::softmax(heads.narrow(1, 0, 2), 1);
  at::Tensor b = heads.narrow(1, 2, 4);
  return {b, a};
}

std::pair<at::Tensor, at::Tensor> MtcnnImpl::Rnet(const at::Tensor& x) const {
  at::Tensor y = ConvPrelu(x, r_, "conv1", "prelu1");
  y = Pool(y, 3, 2);
  y = ConvPrelu(y, r_, "conv2", "prelu2");
  y = Pool(y, 3, 2);
  y = ConvPrelu(y, r_, "conv3", "prelu3");
  y = y.permute({0, 3, 2, 1}).contiguous();
  y = Linear(y.view({y.size(0), -1}), r_, "dense4");
  PreluInPlace(y, r_.at("prelu4.weight"));
  at::Tensor a = at::softmax(Linear(y, r_, "dense5_1"), 1);
  at::Tensor b = Linear(y, r_, "dense5_2");
  return {b, a};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> MtcnnImpl::Onet(const at::Tensor& x) const {
  at::Tensor y = ConvPrelu(x, o_, "conv1", "prelu1");
  y = Pool(y, 3, 2);
  y = ConvPrelu(y, o_, "conv2", "prelu2");
  y = Pool(y, 3, 2);
  y = ConvPrelu(y, o_, "conv3", "prelu3");
  y = Pool(y, 2, 2);
  y = ConvPrelu(y, o_, "conv4", "prelu4");
  y = y.permute({0, 3, 2, 1}).contiguous();
  y = Linear(y.view({y.size(0), -1}), o_, "dense5");
  PreluInPlace(y, o_.at("prelu5.weight"));
  at::Tensor a = at::softmax(Linear(y, o_, "dense6_1"), 1);
  at::Tensor b = Linear(y, o_, "dense6_2");
  at::Tensor c = Linear(y, o_, "dense6_3");
  return {b, c, a};
}

absl::StatusOr<std::vector<FaceDetection>> MtcnnImpl::Detect(const cv::Mat& input,
                                                             const cv::Rect2d* region_in,
                                                             MtcnnTrace* trace) const {
  if (input.empty()) return absl::InvalidArgumentError("Mtcnn::Detect: empty image");
  if (region_in != nullptr &&
      !(std::isfinite(region_in->x) && std::isfinite(region_in->y) &&
        std::isfinite(region_in->width) && std::isfinite(region_in->height) &&
        region_in->width >= 0 && region_in->height >= 0)) {
    return absl::InvalidArgumentError(
        "Mtcnn::DetectInRegion: the region needs finite coordinates and a size >= 0");
  }
  if (input.type() != CV_8UC3) {
    return absl::InvalidArgumentError(
        absl::StrCat("Mtcnn::Detect: expected an 8-bit 3-channel RGB image, got type ",
                     input.type(), " with ", input.channels(), " channels"));
  }
  c10::InferenceMode guard;
  const MtcnnOptions& opt = options_;

  // Huge inputs are detected downscaled.
  cv::Mat rgb = input;
  double in_scale = 1.0;
  const int longer = std::max(input.cols, input.rows);
  if (opt.max_input_side > 0 && longer > opt.max_input_side) {
    in_scale = static_cast<double>(opt.max_input_side) / longer;
    cv::resize(input, rgb,
               cv::Size(std::max(1, static_cast<int>(std::lround(input.cols * in_scale))),
                        std::max(1, static_cast<int>(std::lround(input.rows * in_scale)))),
               0, 0, cv::INTER_AREA);
  }
  const int H = rgb.rows;
  const int W = rgb.cols;
  MtcnnTrace local_trace;
  MtcnnTrace& tr = trace ? *trace : local_trace;
  tr = MtcnnTrace();
  tr.input_scale = in_scale;
  // The region in the coordinates of `rgb`.
  cv::Rect2d region;
  if (region_in != nullptr) {
    region = cv::Rect2d(region_in->x * in_scale, region_in->y * in_scale,
                        region_in->width * in_scale, region_in->height * in_scale);
  }

  const std::vector<double> scales = PyramidScales(H, W, opt.min_face_size, opt.factor);
  tr.scales = scales;
  tr.counts[0] = static_cast<int64_t>(scales.size());
  if (scales.empty()) {
    if (opt.compat) {
      return absl::FailedPreconditionError(absl::StrCat(
          "image ", W, "x", H, " is smaller than min_face_size ", opt.min_face_size,
          " (the reference crashes here: torch.cat of no pyramid levels)"));
    }
    return std::vector<FaceDetection>();
  }

  // Stage 1: P-Net over the pyramid.
  struct Candidate {
    Box box;
    float reg[4];
  };
  std::vector<Candidate> stage1;
  for (size_t k = 0; k < scales.size(); ++k) {
    const double s = scales[k];
    const int hs = static_cast<int>(H * s + 1);
    const int ws = static_cast<int>(W * s + 1);
    tr.pyramid_hw.push_back({hs, ws});
    // The part of the level P-Net runs on (all of it without a region): a
    // window on P-Net's stride-2 grid, so that its cells are the level's
    // cells shifted by (cell_r0, cell_c0).
    // `keep`: the part of the level whose P-Net cells are searched (all of
    // it without a region), on P-Net's stride-2 grid. `win`: the part P-Net
    // runs on, `keep` itself where that gives exactly the whole level's
    // cells, else the whole level, whose cells outside `keep` are dropped.
    // Either way the searched cells are the level's cells shifted by
    // (cell_r0, cell_c0).
    LevelWindow keep{0, hs, 0, ws};
    if (region_in != nullptr) keep = PnetLevelWindow(H, W, hs, ws, region);
    tr.pnet_windows.push_back({keep.row0, keep.row1, keep.col0, keep.col1});
    if (keep.empty()) continue;
    LevelWindow win = keep;
    if ((keep.row1 - keep.row0 < hs || keep.col1 - keep.col0 < ws) &&
        !PnetWindowIsExact(keep.row1 - keep.row0, keep.col1 - keep.col0, hs, ws)) {
      win = LevelWindow{0, hs, 0, ws};
    }
    const int64_t cell_r0 = win.row0 / 2, cell_c0 = win.col0 / 2;
    // Cell (row or column) i of the level is in `keep` when its 12-pixel
    // window starts inside and ends inside (or `keep` runs to the end).
    auto kept = [](int64_t i, int b, int e, int size) {
      return 2 * i >= b && (e == size || 2 * i + 12 <= e);
    };
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor level = ChannelsLastBuffer(1, win.row1 - win.row0, win.col1 - win.col0);
    AreaResampleWindowNormalized(rgb, 0, H, 0, W, hs, ws, win.row0, win.row1, win.col0,
                                 win.col1, level.data_ptr<float>());
    tr.resample_ms += MsSince(t0);
    t0 = std::chrono::steady_clock::now();
    auto [reg_t, prob_t] = Pnet(opt.channels_last ? level : level.contiguous());
    const at::Tensor prob = prob_t.select(0, 0).select(0, 1).contiguous();
    const at::Tensor reg = reg_t.select(0, 0).contiguous();
    const int64_t oh = prob.size(0), ow = prob.size(1);
    const float* pp = prob.data_ptr<float>();
    const float* rp = reg.data_ptr<float>();
    const int64_t plane = oh * ow;
    const float sf = static_cast<float>(s);
    std::vector<Candidate> cands;
    for (int64_t r = 0; r < oh; ++r) {
      for (int64_t c = 0; c < ow; ++c) {
        const float p = pp[r * ow + c];
        if (!(p >= opt.thresholds[0])) continue;
        if (!kept(r + cell_r0, keep.row0, keep.row1, hs) ||
            !kept(c + cell_c0, keep.col0, keep.col1, ws)) {
          continue;
        }
        const float bx = static_cast<float>(c + cell_c0), by = static_cast<float>(r + cell_r0);
        Candidate cand;
        cand.box.x1 = std::floor((2.0f * bx + 1.0f) / sf);
        cand.box.y1 = std::floor((2.0f * by + 1.0f) / sf);
        cand.box.x2 = std::floor((2.0f * bx + 12.0f) / sf);
        cand.box.y2 = std::floor((2.0f * by + 12.0f) / sf);
        cand.box.score = p;
        for (int q = 0; q < 4; ++q) cand.reg[q] = rp[q * plane + r * ow + c];
        cands.push_back(cand);
      }
    }
    if (trace) {
      for (const Candidate& c : cands) {
        tr.stage1_candidates.push_back({c.box.x1, c.box.y1, c.box.x2, c.box.y2, c.box.score,
                                        c.reg[0], c.reg[1], c.reg[2], c.reg[3]});
        tr.stage1_candidate_scale_index.push_back(static_cast<int>(k));
      }
    }
    tr.counts[1] += static_cast<int64_t>(cands.size());
    std::vector<Box> boxes(cands.size());
    for (size_t i = 0; i < cands.size(); ++i) boxes[i] = cands[i].box;
    for (int i : NmsTorchvision(boxes, 0.5)) stage1.push_back(cands[i]);
    tr.pnet_ms += MsSince(t0);
  }
  auto t_stage = std::chrono::steady_clock::now();
  tr.counts[2] = static_cast<int64_t>(stage1.size());
  {
    std::vector<Box> boxes(stage1.size());
    for (size_t i = 0; i < stage1.size(); ++i) boxes[i] = stage1[i].box;
    std::vector<Candidate> picked;
    for (int i : NmsTorchvision(boxes, 0.7)) picked.push_back(stage1[i]);
    stage1 = std::move(picked);
  }
  tr.counts[3] = static_cast<int64_t>(stage1.size());
  std::vector<Box> boxes;
  boxes.reserve(stage1.size());
  for (const Candidate& c : stage1) {
    const Box& b = c.box;
    const float regw = b.x2 - b.x1;
    const float regh = b.y2 - b.y1;
    Box q{b.x1 + c.reg[0] * regw, b.y1 + c.reg[1] * regh, b.x2 + c.reg[2] * regw,
          b.y2 + c.reg[3] * regh, b.score};
    Rerec(q);
    boxes.push_back(q);
  }
  if (trace) {
    for (const Box& b : boxes) tr.stage1_boxes.push_back({b.x1, b.y1, b.x2, b.y2, b.score});
  }

  // Crops of the current boxes; drops (or, in compat mode, fails on) empty ones.
  auto make_rects = [&](std::vector<Box>& bx, std::vector<CropRect>& rects) -> absl::Status {
    rects.clear();
    std::vector<Box> kept;
    for (const Box& b : bx) {
      CropRect r = Pad(b, W, H);
      if (r.empty()) {
        if (opt.compat) {
          return absl::FailedPreconditionError(
              "a candidate box lies outside the image (the reference misaligns boxes and "
              "crops here and crashes)");
        }
        continue;
      }
      rects.push_back(r);
      kept.push_back(b);
    }
    bx = std::move(kept);
    return absl::OkStatus();
  };

  tr.pnet_ms += MsSince(t_stage);
  t_stage = std::chrono::steady_clock::now();

  // Stage 2: R-Net.
  std::vector<CropRect> rects;
  if (!boxes.empty()) {
    absl::Status st = make_rects(boxes, rects);
    if (!st.ok()) return st;
    tr.counts[4] = static_cast<int64_t>(rects.size());
    std::vector<Box> passed;
    std::vector<std::array<float, 4>> mv;
    for (size_t b0 = 0; b0 < rects.size(); b0 += opt.batch_size) {
      const size_t b1 = std::min(rects.size(), b0 + static_cast<size_t>(opt.batch_size));
      at::Tensor batch = CropBatch(rgb, rects, b0, b1, 24);
      auto [reg_t, prob_t] = Rnet(opt.channels_last ? batch : batch.contiguous());
      const at::Tensor reg = reg_t.contiguous(), prob = prob_t.contiguous();
      const float* rp = reg.data_ptr<float>();
      const float* pp = prob.data_ptr<float>();
      for (size_t k = b0; k < b1; ++k) {
        const float score = pp[(k - b0) * 2 + 1];
        if (score > opt.thresholds[1]) {
          Box b = boxes[k];
          b.score = score;
          passed.push_back(b);
          mv.push_back({rp[(k - b0) * 4], rp[(k - b0) * 4 + 1], rp[(k - b0) * 4 + 2],
                        rp[(k - b0) * 4 + 3]});
        }
      }
    }
    tr.counts[5] = static_cast<int64_t>(passed.size());
    boxes.clear();
    for (int i : NmsTorchvision(passed, 0.7)) {
      Box b = passed[i];
      Bbreg(b, mv[i].data());
      Rerec(b);
      boxes.push_back(b);
    }
    tr.counts[6] = static_cast<int64_t>(boxes.size());
    if (trace) {
      for (const Box& b : boxes) tr.stage2_boxes.push_back({b.x1, b.y1, b.x2, b.y2, b.score});
    }
  }

  tr.rnet_ms = MsSince(t_stage);
  t_stage = std::chrono::steady_clock::now();

  // Stage 3: O-Net, landmarks, Min-NMS.
  std::vector<FaceDetection> faces;
  if (!boxes.empty()) {
    absl::Status st = make_rects(boxes, rects);
    if (!st.ok()) return st;
    tr.counts[7] = static_cast<int64_t>(rects.size());
    std::vector<Box> passed;
    std::vector<std::array<float, 10>> points;
    for (size_t b0 = 0; b0 < rects.size(); b0 += opt.batch_size) {
      const size_t b1 = std::min(rects.size(), b0 + static_cast<size_t>(opt.batch_size));
      at::Tensor batch = CropBatch(rgb, rects, b0, b1, 48);
      auto [reg_t, lm_t, prob_t] = Onet(opt.channels_last ? batch : batch.contiguous());
      const at::Tensor reg = reg_t.contiguous(), lm = lm_t.contiguous(),
                       prob = prob_t.contiguous();
      const float* rp = reg.data_ptr<float>();
      const float* lp = lm.data_ptr<float>();
      const float* pp = prob.data_ptr<float>();
      for (size_t k = b0; k < b1; ++k) {
        const size_t i = k - b0;
        const float score = pp[i * 2 + 1];
        if (!(score > opt.thresholds[2])) continue;
        Box b = boxes[k];
        b.score = score;
        // Landmarks relative to the box before the O-Net regression.
        const float wi = (b.x2 - b.x1) + 1.0f;
        const float hi = (b.y2 - b.y1) + 1.0f;
        std::array<float, 10> pt;
        for (int q = 0; q < 5; ++q) {
          pt[2 * q] = (wi * lp[i * 10 + q] + b.x1) - 1.0f;
          pt[2 * q + 1] = (hi * lp[i * 10 + 5 + q] + b.y1) - 1.0f;
        }
        Bbreg(b, rp + i * 4);
        passed.push_back(b);
        points.push_back(pt);
      }
    }
    tr.counts[8] = static_cast<int64_t>(passed.size());
    for (int i : NmsNumpyMin(passed, 0.7f)) {
      FaceDetection f;
      const Box& b = passed[i];
      f.box = {b.x1, b.y1, b.x2, b.y2};
      f.prob = b.score;
      for (int q = 0; q < 5; ++q) f.landmarks[q] = {points[i][2 * q], points[i][2 * q + 1]};
      faces.push_back(f);
    }
    tr.counts[9] = static_cast<int64_t>(faces.size());
  }
  tr.onet_ms = MsSince(t_stage);
  if (trace) {
    for (const FaceDetection& f : faces) {
      tr.final_boxes.push_back({f.box[0], f.box[1], f.box[2], f.box[3], f.prob});
    }
  }

  // Final order.
  std::vector<FaceDetection> ordered;
  ordered.reserve(faces.size());
  if (opt.order == FaceOrder::kLargestFirst) {
    std::vector<float> area(faces.size());
    for (size_t i = 0; i < faces.size(); ++i) area[i] = faces[i].Area();
    const std::vector<int64_t> asc = NpArgsort(area);
    for (auto it = asc.rbegin(); it != asc.rend(); ++it) ordered.push_back(faces[*it]);
  } else {
    std::vector<size_t> idx(faces.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      if (faces[a].prob != faces[b].prob) return faces[a].prob > faces[b].prob;
      return faces[a].Area() > faces[b].Area();
    });
    for (size_t i : idx) ordered.push_back(faces[i]);
  }

  // Back to input coordinates (boxes are 1-based indices, landmarks 0-based).
  if (in_scale != 1.0) {
    const double inv_x = static_cast<double>(input.cols) / W;
    const double inv_y = static_cast<double>(input.rows) / H;
    for (FaceDetection& f : ordered) {
      f.box[0] = static_cast<float>((f.box[0] - 0.5) * inv_x + 0.5);
      f.box[1] = static_cast<float>((f.box[1] - 0.5) * inv_y + 0.5);
      f.box[2] = static_cast<float>((f.box[2] - 0.5) * inv_x + 0.5);
      f.box[3] = static_cast<float>((f.box[3] - 0.5) * inv_y + 0.5);
      for (auto& p : f.landmarks) {
        p[0] = static_cast<float>((p[0] + 0.5) * inv_x - 0.5);
        p[1] = static_cast<float>((p[1] + 0.5) * inv_y - 0.5);
      }
    }
  }
  return ordered;
}

Mtcnn::Mtcnn(std::unique_ptr<MtcnnImpl> impl) : impl_(std::move(impl)) {}
Mtcnn::~Mtcnn() = default;

const MtcnnOptions& Mtcnn::options() const { return impl_->options(); }

absl::StatusOr<std::unique_ptr<Mtcnn>> Mtcnn::Load(const std::string& model_dir,
                                                   const MtcnnOptions& options) {
  NetWeights nets[3];
  const char* names[3] = {"pnet.pt", "rnet.pt", "onet.pt"};
  for (int i = 0; i < 3; ++i) {
    const std::string path = absl::StrCat(model_dir, "/", names[i]);
    absl::StatusOr<io::StateDict> sd = io::ReadStateDict(path);
    if (!sd.ok()) return sd.status();
    for (auto& [k, v] : *sd) nets[i][k] = v;
  }
  absl::StatusOr<std::unique_ptr<MtcnnImpl>> impl =
      MtcnnImpl::Create(std::move(nets[0]), std::move(nets[1]), std::move(nets[2]), options);
  if (!impl.ok()) {
    return absl::Status(impl.status().code(),
                        absl::StrCat(model_dir, ": ", impl.status().message()));
  }
  return std::unique_ptr<Mtcnn>(new Mtcnn(std::move(*impl)));
}

absl::StatusOr<std::vector<FaceDetection>> Mtcnn::Detect(const cv::Mat& rgb,
                                                         MtcnnTrace* trace) const {
  return impl_->Detect(rgb, nullptr, trace);
}

absl::StatusOr<std::vector<FaceDetection>> Mtcnn::DetectInRegion(const cv::Mat& rgb,
                                                                 const cv::Rect2d& region,
                                                                 MtcnnTrace* trace) const {
  return impl_->Detect(rgb, &region, trace);
}

}  // namespace dmue::preprocessing
