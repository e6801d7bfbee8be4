#include "dmue/base/image_write.h"

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "absl/strings/str_cat.h"
#include "dmue/base/files.h"

namespace dmue {
namespace {

absl::Status WriteEncoded(const std::string& path, const cv::Mat& bgr, absl::string_view extension,
                          const std::vector<int>& params) {
  absl::StatusOr<std::string> bytes = EncodeImage(bgr, extension, params);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat("cannot write '", path, "': ", bytes.status().message()));
  }
  return WriteFileAtomically(path, *bytes);
}

}  // namespace

absl::StatusOr<std::string> EncodeImage(const cv::Mat& bgr, absl::string_view extension,
                                        const std::vector<int>& params) {
  std::vector<uchar> buffer;
  const std::string ext(extension);
  try {
    if (!cv::imencode(ext, bgr, buffer, params)) {
      return absl::InternalError(absl::StrCat("'", ext, "' encoding failed"));
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("'", ext, "' encoding failed: ", e.what()));
  }
  return std::string(buffer.begin(), buffer.end());
}

absl::StatusOr<std::string> EncodePng(const cv::Mat& bgr) { return EncodeImage(bgr, ".png"); }

absl::Status WriteImage(const std::string& path, const cv::Mat& bgr, const std::vector<int>& params) {
  return WriteEncoded(path, bgr, std::filesystem::path(path).extension().string(), params);
}

absl::Status WritePng(const std::string& path, const cv::Mat& bgr) { return WriteEncoded(path, bgr, ".png", {}); }

}  // namespace dmue
