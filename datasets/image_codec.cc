#include "datasets/image_codec.h"

#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/files.h"
#include "dmue/base/image_write.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/image_decode.h"

namespace dmue::datasets {

absl::string_view ImageEncodingName(ImageEncoding encoding) {
  switch (encoding) {
    case ImageEncoding::kRaw: return "raw";
    case ImageEncoding::kPng: return "png";
    case ImageEncoding::kJpeg: return "jpeg";
  }
  return "unknown";
}

absl::StatusOr<ImageEncoding> ParseImageEncoding(absl::string_view name) {
  if (name == "raw") return ImageEncoding::kRaw;
  if (name == "png") return ImageEncoding::kPng;
  if (name == "jpeg" || name == "jpg") return ImageEncoding::kJpeg;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown image encoding '", name, "' (expected raw, png or jpeg)"));
}

absl::StatusOr<cv::Mat> DecodeImageRgb(absl::string_view bytes, absl::string_view source,
                                       int64_t max_pixels) {
  io::ImageLimits limits;
  limits.max_pixels = max_pixels;
  return io::DecodeImageRgb(bytes, source, limits);
}

absl::StatusOr<cv::Mat> ReadImageRgb(const std::string& path, int64_t max_pixels) {
  io::ImageLimits limits;
  limits.max_pixels = max_pixels;
  return io::ReadImageRgb(path, limits);
}

absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, ImageEncoding encoding,
                                        int jpeg_quality) {
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3)) {
    return absl::InvalidArgumentError("EncodeImage: expected a non-empty 8-bit 1- or 3-channel image");
  }
  cv::Mat bgr;
  if (image.channels() == 3) {
    cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = image;
  }
  switch (encoding) {
    case ImageEncoding::kPng:
      return ::dmue::EncodeImage(bgr, ".png", {cv::IMWRITE_PNG_COMPRESSION, 1});
    case ImageEncoding::kJpeg:
      return ::dmue::EncodeImage(bgr, ".jpg", {cv::IMWRITE_JPEG_QUALITY, jpeg_quality});
    default:
      return absl::InvalidArgumentError("EncodeImage: encoding must be png or jpeg");
  }
}

absl::Status WriteImageFile(const std::string& path, const cv::Mat& image) {
  const ImageEncoding encoding =
      absl::EndsWith(path, ".jpg") || absl::EndsWith(path, ".jpeg") ? ImageEncoding::kJpeg : ImageEncoding::kPng;
  ASSIGN_OR_RETURN(const std::string bytes, WithContext(EncodeImage(image, encoding), path));
  return WriteFileAtomically(path, bytes);
}

}  // namespace dmue::datasets
