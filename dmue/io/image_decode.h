// Decodes untrusted image files into 8-bit RGB with limits, so that a corrupt,
// truncated or hostile file becomes an error that names its source instead of
// a crash or an out-of-memory kill.
//
// PeekImageHeader() reads the width and height that a PNG, JPEG, BMP, GIF or
// WebP file declares without decoding anything, so decompression bombs (tiny
// files that declare huge dimensions) are refused before any pixel buffer is
// allocated. DecodeImageRgb() checks those dimensions against ImageLimits and
// then decodes with OpenCV (no LibTorch here).
//
// What comes back is always CV_8UC3, RGB order (not OpenCV's BGR), contiguous:
//  - grayscale is replicated to three channels;
//  - an alpha channel is dropped, not composited (what PIL's .convert("RGB")
//    and cv::IMREAD_COLOR both do, and what the reference DMUE scripts saw);
//  - 16-bit samples are reduced to 8 bits (high byte);
//  - CMYK / YCCK JPEGs are converted by libjpeg + OpenCV;
//  - EXIF orientation is IGNORED by default, like PIL.Image.open in the
//    reference (set apply_exif_orientation to rotate as a phone would show it).
//
// Very large but allowed images can be decoded reduced (max_decoded_side):
// JPEGs through libjpeg's DCT scaling (cv::IMREAD_REDUCED_COLOR_2/4/8, so the
// full-resolution buffer is never allocated), other formats by a full decode
// (bounded by max_pixels) followed by an area resize.
#ifndef DMUE_IO_IMAGE_DECODE_H_
#define DMUE_IO_IMAGE_DECODE_H_

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/base/files.h"

namespace dmue::io {

enum class ImageFormat { kUnknown = 0, kPng, kJpeg, kBmp, kGif, kWebp };

// "png", "jpeg", "bmp", "gif", "webp", "unknown".
const char* ImageFormatName(ImageFormat format);

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  // As stored, before any EXIF rotation.
  int64_t width = 0;
  int64_t height = 0;
  // Components in the file (1 gray, 2 gray+alpha, 3, 4 RGBA or CMYK), 0 when
  // the header does not say (GIF, WebP without VP8X).
  int channels = 0;
  // Bits per sample (8 or 16 for PNG; 8 or 12 for JPEG; per pixel for BMP).
  int bit_depth = 0;
  // EXIF orientation tag of a JPEG (1..8), 1 when absent or unreadable.
  int exif_orientation = 1;
  // JPEG: whether an end-of-image marker follows the scan data (false for a
  // truncated file). Always true for the other formats.
  bool complete = true;
  // JPEG: a progressive frame (SOF2/6/10/14), which libjpeg decodes through
  // coefficient buffers of the full declared size whatever the output scale.
  bool progressive = false;
  // JPEG: start-of-scan markers in the file (1 for a plain baseline JPEG).
  int scans = 0;
};

struct ImageLimits {
  // Largest accepted encoded size.
  int64_t max_bytes = int64_t{64} << 20;
  // Most pixels the decoder may hold at once: the declared width x height,
  // or for a baseline JPEG decoded reduced the reduced size (a progressive
  // JPEG holds full-size coefficient buffers, so its declared size counts).
  int64_t max_pixels = 100'000'000;
  // Most JPEG scans: each scan of a progressive file costs a pass over the
  // whole coefficient buffer (hundreds of empty scans take a minute to
  // decode). Camera and web encoders write at most ~12.
  int max_jpeg_scans = 64;
  // When > 0, images whose longer side exceeds this are decoded downscaled so
  // that the longer side is at most this many pixels (see DecodedImage for the
  // factors). 0 keeps the full resolution.
  int64_t max_decoded_side = 0;
  // Rotate/flip by the EXIF orientation tag (OpenCV's default); off by default
  // to match PIL, which the reference used.
  bool apply_exif_orientation = false;
  // Accept a JPEG without an end-of-image marker (libjpeg then fills the
  // missing rows with grey). Off: such a file is reported as truncated.
  bool allow_truncated = false;
};

struct DecodedImage {
  cv::Mat rgb;  // CV_8UC3, RGB, contiguous.
  ImageHeader header;
  // Size of the full-resolution image after EXIF rotation (if applied).
  int64_t full_width = 0;
  int64_t full_height = 0;
  // rgb.cols / full_width and rgb.rows / full_height (1 when not reduced).
  // A point (x, y) of `rgb` is at about (x / scale_x, y / scale_y) in the
  // full image.
  double scale_x = 1.0;
  double scale_y = 1.0;
};

// Parses the header of `bytes`; no pixel data is touched. `source` (a path or
// a description) names the input in errors.
absl::StatusOr<ImageHeader> PeekImageHeader(absl::string_view bytes,
                                            absl::string_view source = "<memory>");

// Decodes `bytes` to 8-bit RGB within `limits`. Errors (InvalidArgument for
// bad or unsupported data, ResourceExhausted for limit violations) name
// `source`.
absl::StatusOr<DecodedImage> DecodeImage(absl::string_view bytes, absl::string_view source,
                                         const ImageLimits& limits = {});

// DecodeImage(...).rgb.
absl::StatusOr<cv::Mat> DecodeImageRgb(absl::string_view bytes, absl::string_view source,
                                       const ImageLimits& limits = {});

// Reads the file at `path` (refusing files over max_bytes before reading
// them) and decodes it. NotFound when it cannot be opened.
absl::StatusOr<DecodedImage> ReadImage(const std::string& path, const ImageLimits& limits = {});
absl::StatusOr<cv::Mat> ReadImageRgb(const std::string& path, const ImageLimits& limits = {});

// Reads a whole file within a byte limit (the first step of ReadImage; it
// lives in dmue/base/files.h).
using ::dmue::ReadFileBytes;

}  // namespace dmue::io

#endif  // DMUE_IO_IMAGE_DECODE_H_
