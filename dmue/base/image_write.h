// Image encoding and writing, the one copy every writer of PNG / JPEG files
// uses (charts, contact sheets, face crops, LMDB records). Images are 8-bit
// OpenCV matrices in OpenCV's channel order (BGR, or one grey channel); files
// are written crash-safely through WriteFileAtomically (see files.h).
//
//   RETURN_IF_ERROR(WritePng(dir + "/curves.png", chart));
//   ASSIGN_OR_RETURN(std::string jpeg, EncodeImage(bgr, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90}));
#ifndef DMUE_BASE_IMAGE_WRITE_H_
#define DMUE_BASE_IMAGE_WRITE_H_

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue {

// Encodes `bgr` in the format of `extension` (".png", ".jpg", ...) with
// OpenCV's imwrite `params` (e.g. {cv::IMWRITE_JPEG_QUALITY, 95}).
absl::StatusOr<std::string> EncodeImage(const cv::Mat& bgr, absl::string_view extension,
                                        const std::vector<int>& params = {});

// EncodeImage(bgr, ".png").
absl::StatusOr<std::string> EncodePng(const cv::Mat& bgr);

// Encodes `bgr` in the format of `path`'s extension and writes it atomically.
// Errors name the path.
absl::Status WriteImage(const std::string& path, const cv::Mat& bgr, const std::vector<int>& params = {});

// WriteImage for a PNG file; `path` need not end in ".png".
absl::Status WritePng(const std::string& path, const cv::Mat& bgr);

}  // namespace dmue

#endif  // DMUE_BASE_IMAGE_WRITE_H_
