#include "datasets/image_codec.h"

#include <fstream>
#include <sstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty image data"));
  const cv::Mat buffer(1, int(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": cannot decode image: ", e.what()));
  }
  if (decoded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": cannot decode image (corrupt or unsupported)"));
  }
  if (int64_t(decoded.rows) * decoded.cols > max_pixels) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": image ", decoded.cols, "x", decoded.rows,
                                                   " exceeds ", max_pixels, " pixels"));
  }
  if (decoded.depth() == CV_16U) decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
  if (decoded.depth() != CV_8U) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": unsupported pixel depth"));
  }
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: cv::cvtColor(decoded, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(decoded, rgb, cv::COLOR_BGRA2RGB); break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": unsupported channel count ", decoded.channels()));
  }
  return rgb;
}

absl::StatusOr<cv::Mat> ReadImageRgb(const std::string& path, int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open image '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read image '", path, "'"));
  return DecodeImageRgb(buffer.str(), path, max_pixels);
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
  std::vector<uchar> out;
  std::vector<int> params;
  std::string ext;
  switch (encoding) {
    case ImageEncoding::kPng:
      ext = ".png";
      params = {cv::IMWRITE_PNG_COMPRESSION, 1};
      break;
    case ImageEncoding::kJpeg:
      ext = ".jpg";
      params = {cv::IMWRITE_JPEG_QUALITY, jpeg_quality};
      break;
    default:
      return absl::InvalidArgumentError("EncodeImage: encoding must be png or jpeg");
  }
  if (!cv::imencode(ext, bgr, out, params)) return absl::InternalError("EncodeImage: imencode failed");
  return std::string(out.begin(), out.end());
}

absl::Status WriteImageFile(const std::string& path, const cv::Mat& image) {
  const ImageEncoding encoding =
      path.size() > 4 && (path.substr(path.size() - 4) == ".jpg" || path.substr(path.size() - 5) == ".jpeg")
          ? ImageEncoding::kJpeg
          : ImageEncoding::kPng;
  absl::StatusOr<std::string> bytes = EncodeImage(image, encoding);
  if (!bytes.ok()) return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), std::streamsize(bytes->size()));
  if (!out.good()) return absl::PermissionDeniedError(absl::StrCat("cannot write image '", path, "'"));
  return absl::OkStatus();
}

}  // namespace dmue::datasets
