// Image decoding/encoding used by the datasets package.
//
// DecodeImageRgb / ReadImageRgb forward to //dmue/io:image_decode (limits,
// header checks); they return 8-bit RGB HWC with 3 channels (grey replicated).
#ifndef DATASETS_IMAGE_CODEC_H_
#define DATASETS_IMAGE_CODEC_H_

#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue::datasets {

enum class ImageEncoding : uint8_t { kRaw = 0, kPng = 1, kJpeg = 2 };

// "raw", "png", "jpeg".
absl::string_view ImageEncodingName(ImageEncoding encoding);
absl::StatusOr<ImageEncoding> ParseImageEncoding(absl::string_view name);

// Decodes PNG/JPEG/BMP/... bytes to 3-channel RGB uint8 with dmue::io's
// default limits; `source` names the input in errors. Rejects images with more
// than `max_pixels` pixels.
absl::StatusOr<cv::Mat> DecodeImageRgb(absl::string_view bytes, absl::string_view source,
                                       int64_t max_pixels = int64_t{1} << 28);
absl::StatusOr<cv::Mat> ReadImageRgb(const std::string& path, int64_t max_pixels = int64_t{1} << 28);

// Encodes an RGB (3-channel) or grey (1-channel) uint8 image as PNG or JPEG.
// RGB input is written as RGB (the file decodes to the same colours).
absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, ImageEncoding encoding,
                                        int jpeg_quality = 95);

// Writes an RGB or grey image to a file (format from the extension).
absl::Status WriteImageFile(const std::string& path, const cv::Mat& image);

}  // namespace dmue::datasets

#endif  // DATASETS_IMAGE_CODEC_H_
