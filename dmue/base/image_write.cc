#include "dmue/base/image_write.h"

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "absl/strings/str_cat.h"
#include "dmue/base/files.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"

namespace dmue {
namespace {

absl::Status WriteEncoded(const std::string& path, const cv::Mat& bgr, absl::string_view extension,
                          const std::vector<int>& params) {
  ASSIGN_OR_RETURN(const std::string bytes,
                   WithContext(EncodeImage(bgr, extension, params), absl::StrCat("cannot write '", path, "'")));
  return WriteFileAtomically(path, bytes);
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
