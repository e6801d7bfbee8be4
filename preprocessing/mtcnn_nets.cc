// The three nets (facenet-pytorch's P-Net, R-Net, O-Net) and their weights;
// see mtcnn_internal.h.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/ConvUtils.h>

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dmue/base/status_macros.h"
#include "preprocessing/mtcnn_internal.h"

namespace dmue::preprocessing {
namespace {

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

// max_pool2d(2, 2, ceil_mode=True)'s output extent on `in` pixels.
int64_t PooledExtent(int64_t in) {
  int64_t o = (in - 2 + 1) / 2 + 1;
  if ((o - 1) * 2 >= in) --o;
  return o;
}

// P-Net's output extent on an input of `in` pixels (>= 12): a 3x3
// convolution, the pool, two more 3x3 convolutions, the 1x1 heads.
int64_t PnetOutputExtent(int64_t in) { return PooledExtent(in - 2) - 4; }

// The shapes facenet-pytorch's nets have.
absl::Status CheckNetWeights(const NetWeights& pnet, const NetWeights& rnet,
                             const NetWeights& onet) {
  RETURN_IF_ERROR(CheckWeights(pnet, "P-Net",
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
                                {"conv4_2.bias", {4}}}));
  RETURN_IF_ERROR(CheckWeights(rnet, "R-Net",
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
                                {"dense5_2.bias", {4}}}));
  RETURN_IF_ERROR(CheckWeights(onet, "O-Net",
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
                                {"dense6_3.bias", {10}}}));
  return absl::OkStatus();
}

absl::Status CheckOptions(const MtcnnOptions& options) {
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
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MtcnnImpl>> MtcnnImpl::Create(NetWeights pnet, NetWeights rnet,
                                                             NetWeights onet,
                                                             const MtcnnOptions& options) {
  RETURN_IF_ERROR(CheckNetWeights(pnet, rnet, onet));
  RETURN_IF_ERROR(CheckOptions(options));
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
  const at::Tensor* weights[4] = {&p_.at("conv1.weight"), &p_.at("conv2.weight"),
                                  &p_.at("conv3.weight"), &pnet_heads_w_};
  const at::Tensor* biases[4] = {&p_.at("conv1.bias"), &p_.at("conv2.bias"),
                                 &p_.at("conv3.bias"), &pnet_heads_b_};
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{rows, cols}, {level_rows, level_cols}}) {
    if (h < 12 || w < 12) return false;
    const int64_t ph = PooledExtent(h - 2), pw = PooledExtent(w - 2);
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

at::Tensor MtcnnImpl::PnetHeads(const at::Tensor& x) const {
  at::Tensor y = ConvPrelu(x, p_, "conv1", "prelu1");
  y = Pool(y, 2, 2);
  y = ConvPrelu(y, p_, "conv2", "prelu2");
  y = ConvPrelu(y, p_, "conv3", "prelu3");
  // Both 1x1 heads as one 6-channel convolution (one call instead of two).
  return at::conv2d(y, pnet_heads_w_, pnet_heads_b_);
}

namespace {

// P-Net's outputs from its heads: offsets and the scores' softmax.
std::pair<at::Tensor, at::Tensor> PnetOutputs(const at::Tensor& heads) {
  return {heads.narrow(1, 2, 4), at::softmax(heads.narrow(1, 0, 2), 1)};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> MtcnnImpl::Pnet(const at::Tensor& x) const {
  return PnetOutputs(PnetHeads(x));
}

std::pair<at::Tensor, at::Tensor> MtcnnImpl::PnetOnWindow(const at::Tensor& x,
                                                          const LevelWindow& run, int level_rows,
                                                          int level_cols) const {
  const at::Tensor heads = PnetHeads(x);
  const int64_t oh = heads.size(2), ow = heads.size(3);
  const int64_t level_oh = PnetOutputExtent(level_rows), level_ow = PnetOutputExtent(level_cols);
  const int64_t r0 = run.row0 / 2, c0 = run.col0 / 2;
  if (oh == level_oh && ow == level_ow) return PnetOutputs(heads);
  TORCH_CHECK(r0 + oh <= level_oh && c0 + ow <= level_ow, "P-Net window outside its level");
  // torch's softmax (over dim 1 of a contiguous [1, 2, h, w]) computes a cell
  // in the vector body or the scalar tail of its pass over the h * w plane,
  // which round differently; so the window's scores are computed at their
  // places in a plane of the whole level's extent.
  at::Tensor plane = at::zeros({1, 2, level_oh, level_ow}, heads.options());
  plane.narrow(2, r0, oh).narrow(3, c0, ow).copy_(heads.narrow(1, 0, 2));
  at::Tensor prob = at::softmax(plane, 1).narrow(2, r0, oh).narrow(3, c0, ow);
  return {heads.narrow(1, 2, 4), prob};
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

}  // namespace dmue::preprocessing
