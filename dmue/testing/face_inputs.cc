#include "dmue/testing/face_inputs.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "dmue/base/status_macros.h"
#include "dmue/io/image_decode.h"
#include "third_party/shared_data.h"

namespace dmue::testing {
namespace {

constexpr int kSide = 150;

template <typename Pixel>
cv::Mat Pattern(Pixel pixel) {
  cv::Mat rgb(kSide, kSide, CV_8UC3);
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      for (int c = 0; c < 3; ++c) rgb.at<cv::Vec3b>(y, x)[c] = static_cast<uint8_t>(pixel(x, y, c) % 256);
    }
  }
  return rgb;
}

absl::StatusOr<cv::Mat> Photo(const char* file, int interpolation) {
  ASSIGN_OR_RETURN(const std::string path, SharedPath(std::string("data/photos/") + file));
  ASSIGN_OR_RETURN(const cv::Mat rgb, io::ReadImageRgb(path));
  cv::Mat resized;
  cv::resize(rgb, resized, cv::Size(kSide, kSide), 0, 0, interpolation);
  return resized;
}

}  // namespace

std::vector<FaceInput> SyntheticFaceInputs() {
  return {
      {"synthetic_stripes", Pattern([](int x, int y, int c) { return x * 7 + y * 13 + c * 61 + (x * y) % 31; })},
      {"synthetic_blobs", Pattern([](int x, int y, int c) {
         const int r2 = (x - 60 - 15 * c) * (x - 60 - 15 * c) + (y - 80) * (y - 80);
         return c == 0 ? x * 255 / 149 : c == 1 ? y * 255 / 149 : r2 / 8;
       })},
  };
}

absl::StatusOr<std::vector<FaceInput>> PhotoFaceInputs() {
  std::vector<FaceInput> inputs;
  ASSIGN_OR_RETURN(cv::Mat test1, Photo("test1.jpg", cv::INTER_AREA));
  inputs.push_back({"test1", test1});
  ASSIGN_OR_RETURN(cv::Mat id11, Photo("onnx_11-FaceId-0_align.jpg", cv::INTER_LINEAR));
  inputs.push_back({"faceid_11", id11});
  cv::Mat flipped;
  cv::flip(id11, flipped, 1);
  inputs.push_back({"faceid_11_flipped", flipped});
  ASSIGN_OR_RETURN(cv::Mat id12, Photo("onnx_12-FaceId-0_align.jpg", cv::INTER_LINEAR));
  inputs.push_back({"faceid_12", id12});
  ASSIGN_OR_RETURN(cv::Mat other, Photo("face_sdk_test1_cropped.jpg", cv::INTER_LINEAR));
  inputs.push_back({"sdk_cropped", other});
  return inputs;
}

uint64_t PixelHash(const cv::Mat& rgb) {
  uint64_t h = kFnvOffset;
  for (int y = 0; y < rgb.rows; ++y) h = Fnv1a64(rgb.ptr<uint8_t>(y), static_cast<size_t>(rgb.cols) * rgb.elemSize(), h);
  return h;
}

}  // namespace dmue::testing
