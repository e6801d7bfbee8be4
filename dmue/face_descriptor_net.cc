#include "dmue/face_descriptor_net.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dmue/base/status_macros.h"

namespace dmue {
namespace {

// face-api's FaceRecognitionNet.forwardInput: the residual blocks after the
// stem, in order, with their channels and whether they down-sample.
struct BlockSpec {
  const char* name;
  int64_t in, out;
  bool down;
};
constexpr BlockSpec kBlocks[] = {
    {"conv32_1", 32, 32, false},       {"conv32_2", 32, 32, false},     {"conv32_3", 32, 32, false},
    {"conv64_down", 32, 64, true},     {"conv64_1", 64, 64, false},     {"conv64_2", 64, 64, false},
    {"conv64_3", 64, 64, false},       {"conv128_down", 64, 128, true}, {"conv128_1", 128, 128, false},
    {"conv128_2", 128, 128, false},    {"conv256_down", 128, 256, true}, {"conv256_1", 256, 256, false},
    {"conv256_2", 256, 256, false},    {"conv256_down_out", 256, 256, true},
};

// face-api's mean RGB (tf.fill float32) and divisor: (x - mean) / 255.
constexpr float kMeanRgb[3] = {122.782f, 117.001f, 104.298f};
constexpr float kDivisor = 255.f;

// A float32 weight as a tensor of its declared shape (a copy).
absl::StatusOr<at::Tensor> WeightTensor(const io::TfjsWeights& weights, const std::string& name,
                                        const std::vector<int64_t>& shape, absl::string_view source) {
  ASSIGN_OR_RETURN(const io::TfjsWeight* w, weights.GetFloat(name, shape, source));
  return torch::from_blob(const_cast<float*>(w->floats.data()), shape, torch::kFloat32).clone();
}

absl::Status CheckImages(const at::Tensor& images) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 ||
      images.size(2) != FaceDescriptorNet::kInputSide || images.size(3) != FaceDescriptorNet::kInputSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("FaceDescriptorNet: images must be [N, 3, 150, 150] RGB, got ",
                     images.defined() ? absl::StrCat("[", absl::StrJoin(images.sizes(), ", "), "]") : "undefined"));
  }
  if (images.scalar_type() != torch::kUInt8 && !images.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat("FaceDescriptorNet: images must be uint8 or floating point, got ",
                                                   c10::toString(images.scalar_type())));
  }
  if (!images.device().is_cpu()) {
    return absl::InvalidArgumentError("FaceDescriptorNet: images must be on the CPU");
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultFaceApiModelDir() {
  if (const char* dir = std::getenv("DMUE_FACE_API_DIR"); dir != nullptr && *dir != '\0') return dir;
  const passwd* user = ::getpwuid(::getuid());
  const char* home = user != nullptr && user->pw_dir != nullptr ? user->pw_dir : std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "", "/.cache/dmue-npm/face-api-1.7.15/package/model");
}

std::vector<std::pair<std::string, std::vector<int64_t>>> FaceDescriptorNet::WeightShapes() {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  const auto conv = [&](const std::string& prefix, int64_t in, int64_t out, int64_t kernel) {
    shapes.push_back({prefix + "/conv/filters", {kernel, kernel, in, out}});
    for (const char* name : {"/conv/bias", "/scale/weights", "/scale/biases"}) shapes.push_back({prefix + name, {out}});
  };
  conv("conv32_down", 3, 32, 7);
  for (const BlockSpec& spec : kBlocks) {
    conv(absl::StrCat(spec.name, "/conv1"), spec.in, spec.out, 3);
    conv(absl::StrCat(spec.name, "/conv2"), spec.out, spec.out, 3);
  }
  shapes.push_back({"fc", {256, kDescriptorSize}});
  return shapes;
}

absl::StatusOr<FaceDescriptorNet> FaceDescriptorNet::Load(const std::string& model_dir) {
  const std::string manifest = absl::StrCat(model_dir, "/", kFaceApiManifest);
  ASSIGN_OR_RETURN(const io::TfjsWeights weights, io::ReadTfjsWeights(manifest));
  return FromWeights(weights, manifest);
}

absl::StatusOr<FaceDescriptorNet::ConvLayer> FaceDescriptorNet::LoadConv(const io::TfjsWeights& weights,
                                                                         const std::string& prefix, int64_t in,
                                                                         int64_t out, int64_t kernel,
                                                                         absl::string_view source) {
  ConvLayer layer;
  ASSIGN_OR_RETURN(at::Tensor hwio, WeightTensor(weights, prefix + "/conv/filters", {kernel, kernel, in, out}, source));
  layer.filters = hwio.permute({3, 2, 0, 1}).contiguous();
  ASSIGN_OR_RETURN(layer.bias, WeightTensor(weights, prefix + "/conv/bias", {out}, source));
  ASSIGN_OR_RETURN(at::Tensor scale, WeightTensor(weights, prefix + "/scale/weights", {out}, source));
  ASSIGN_OR_RETURN(at::Tensor shift, WeightTensor(weights, prefix + "/scale/biases", {out}, source));
  layer.scale = scale.view({1, out, 1, 1});
  layer.shift = shift.view({1, out, 1, 1});
  return layer;
}

absl::StatusOr<FaceDescriptorNet> FaceDescriptorNet::FromWeights(const io::TfjsWeights& weights,
                                                                 absl::string_view source) {
  FaceDescriptorNet net;
  ASSIGN_OR_RETURN(net.stem_, LoadConv(weights, "conv32_down", 3, 32, 7, source));
  for (const BlockSpec& spec : kBlocks) {
    Residual block;
    block.down = spec.down;
    ASSIGN_OR_RETURN(block.conv1, LoadConv(weights, absl::StrCat(spec.name, "/conv1"), spec.in, spec.out, 3, source));
    ASSIGN_OR_RETURN(block.conv2, LoadConv(weights, absl::StrCat(spec.name, "/conv2"), spec.out, spec.out, 3, source));
    net.blocks_.push_back(std::move(block));
  }
  ASSIGN_OR_RETURN(net.fc_, WeightTensor(weights, "fc", {256, kDescriptorSize}, source));
  return net;
}

// face-api's convLayer: tf.conv2d, + bias, * scale + shift, optional ReLU.
// 'same' padding of a 3x3 stride-1 conv is 1 on every side; 'valid' is 0.
at::Tensor FaceDescriptorNet::Conv(const at::Tensor& x, const ConvLayer& layer, int64_t stride, int64_t padding,
                                   bool relu) {
  at::Tensor out = at::conv2d(x, layer.filters, layer.bias, stride, padding);
  out = out * layer.scale + layer.shift;
  return relu ? at::relu(out) : out;
}

// face-api's residual / residualDown. The down-sampling shortcut is a 2x2
// average pool, zero-padded to twice the channels; when the stride-2 "valid"
// conv comes out one row and column short of the pool (odd sizes), face-api
// appends a zero row and column to the conv's output.
at::Tensor FaceDescriptorNet::Block(const at::Tensor& x, const Residual& block) {
  at::Tensor out = block.down ? Conv(x, block.conv1, 2, 0, true) : Conv(x, block.conv1, 1, 1, true);
  out = Conv(out, block.conv2, 1, 1, false);
  at::Tensor shortcut = x;
  if (block.down) {
    shortcut = at::avg_pool2d(x, 2, 2);
    if (shortcut.size(2) != out.size(2) || shortcut.size(3) != out.size(3)) {
      out = at::constant_pad_nd(out, {0, 1, 0, 1});
    }
    if (shortcut.size(1) != out.size(1)) {
      shortcut = at::constant_pad_nd(shortcut, {0, 0, 0, 0, 0, shortcut.size(1)});
    }
  }
  return at::relu(shortcut + out);
}

absl::StatusOr<at::Tensor> FaceDescriptorNet::Descriptor(const at::Tensor& images) const {
  RETURN_IF_ERROR(CheckImages(images));
  torch::NoGradGuard no_grad;
  const at::Tensor mean = torch::tensor({kMeanRgb[0], kMeanRgb[1], kMeanRgb[2]}).view({1, 3, 1, 1});
  at::Tensor x = (images.to(torch::kFloat32) - mean) / kDivisor;
  x = at::max_pool2d(Conv(x, stem_, 2, 0, true), 3, 2);
  for (const Residual& block : blocks_) x = Block(x, block);
  return at::matmul(x.mean({2, 3}), fc_);
}

}  // namespace dmue
