#include "preprocessing/face_aligner.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "preprocessing/similarity_transform.h"

namespace dmue::preprocessing {

const std::vector<cv::Point2d>& Template5() {
  static const std::vector<cv::Point2d> points = {
      {314, 364}, {484, 364}, {395, 458}, {310, 524}, {480, 524}};
  return points;
}

absl::StatusOr<std::vector<cv::Point2d>> LoadTemplate(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open template"));
  std::vector<cv::Point2d> points;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    std::istringstream ss(line);
    double x, y;
    if (!(ss >> x >> y) || !std::isfinite(x) || !std::isfinite(y)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected 'x y', got '", line, "'"));
    }
    points.emplace_back(x, y);
  }
  if (points.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a template needs >= 2 points"));
  }
  return points;
}

absl::StatusOr<std::vector<cv::Point2d>> MtcnnLandmarkSource::Landmarks(
    const cv::Mat& /*rgb*/, const FaceDetection& face) const {
  std::vector<cv::Point2d> points;
  for (const auto& p : face.landmarks) points.emplace_back(p[0], p[1]);
  return points;
}

std::array<float, 4> ClampBox(const std::array<float, 4>& box, int width, int height,
                              bool compat, bool swap_wh) {
  std::array<float, 4> b = box;
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  if (compat) {
    // `if x1 < 0: x1 = 0` ... `if x2 > W: x2 = W - 1` (crop_msra: W and H
    // swapped).
    const float xlim = swap_wh ? h : w;
    const float ylim = swap_wh ? w : h;
    if (b[0] < 0) b[0] = 0;
    if (b[1] < 0) b[1] = 0;
    if (b[2] > xlim) b[2] = xlim - 1;
    if (b[3] > ylim) b[3] = ylim - 1;
  } else {
    b[0] = std::min(std::max(b[0], 0.0f), w);
    b[1] = std::min(std::max(b[1], 0.0f), h);
    b[2] = std::min(std::max(b[2], 0.0f), w);
    b[3] = std::min(std::max(b[3], 0.0f), h);
  }
  return b;
}

cv::Rect2d ExpectedFaceRegion(const std::array<float, 4>& box, const cv::Matx33d& matrix,
                              double margin) {
  double x0 = std::numeric_limits<double>::infinity(), y0 = x0;
  double x1 = -x0, y1 = -x0;
  for (int i = 0; i < 4; ++i) {
    const cv::Point2d p =
        ApplyTransform(matrix, cv::Point2d(box[(i & 1) ? 2 : 0], box[(i & 2) ? 3 : 1]));
    x0 = std::min(x0, p.x);
    x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y);
    y1 = std::max(y1, p.y);
  }
  const double mx = (x1 - x0) * margin, my = (y1 - y0) * margin;
  return cv::Rect2d(x0 - mx, y0 - my, (x1 - x0) + 2 * mx, (y1 - y0) + 2 * my);
}

std::array<float, 4> PredictedCanvasBox(const std::array<float, 4>& box, const cv::Matx33d& matrix) {
  const cv::Point2d centre =
      ApplyTransform(matrix, cv::Point2d((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0));
  const double scale = std::sqrt(std::abs(matrix(0, 0) * matrix(1, 1) - matrix(0, 1) * matrix(1, 0)));
  const double half_w = (box[2] - box[0]) * scale / 2, half_h = (box[3] - box[1]) * scale / 2;
  return {static_cast<float>(centre.x - half_w), static_cast<float>(centre.y - half_h),
          static_cast<float>(centre.x + half_w), static_cast<float>(centre.y + half_h)};
}

CropRect EnlargedCropRect(const std::array<float, 4>& box, int width, int height, int num,
                          int den, bool compat, std::array<int, 2>* pads_h_w) {
  // Python int(): truncation toward zero.
  const int x1 = static_cast<int>(box[0]);
  const int y1 = static_cast<int>(box[1]);
  const int x2 = static_cast<int>(box[2]);
  const int y2 = static_cast<int>(box[3]);
  const int h = y2 - y1;
  const int w = x2 - x1;
  const int pdh = static_cast<int>((static_cast<double>(h * num) / den - h) / 2);
  const int pdw = static_cast<int>((static_cast<double>(w * num) / den - w) / 2);
  if (pads_h_w) *pads_h_w = {pdh, pdw};
  CropRect r{y1 - pdh, y2 + pdh, x1 - pdw, x2 + pdw};
  if (compat) {
    if (r.row0 < 0) r.row0 = 0;
    if (r.col0 < 0) r.col0 = 0;
    if (r.col1 > width) r.col1 = width - 1;
    if (r.row1 > height) r.row1 = height - 1;
  } else {
    r.row0 = std::clamp(r.row0, 0, height);
    r.row1 = std::clamp(r.row1, 0, height);
    r.col0 = std::clamp(r.col0, 0, width);
    r.col1 = std::clamp(r.col1, 0, width);
  }
  return r;
}

FaceAligner::FaceAligner(const Mtcnn* detector, const LandmarkSource* landmarks,
                         AlignOptions options)
    : detector_(detector), landmarks_(landmarks), options_(options) {}

absl::StatusOr<FaceDetection> FaceAligner::SelectFace(
    const std::vector<FaceDetection>& faces) const {
  if (faces.empty()) return absl::NotFoundError("no face");
  if (options_.selection == FaceSelection::kLargest) {
    // Largest area; the first (detector order) among equals.
    size_t best = 0;
    for (size_t i = 1; i < faces.size(); ++i) {
      if (faces[i].Area() > faces[best].Area()) best = i;
    }
    return faces[best];
  }
  size_t best = 0;
  for (size_t i = 1; i < faces.size(); ++i) {
    if (faces[i].prob > faces[best].prob) best = i;
  }
  return faces[best];
}

namespace {

absl::Status CheckInput(const cv::Mat& rgb) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    return absl::InvalidArgumentError("expected a non-empty 8-bit 3-channel RGB image");
  }
  return absl::OkStatus();
}

// `rect` of the canvas of `canvas_from_photo`, `out` x `out` pixels, warped
// straight from the photo (bilinear; zero outside it, as the canvas warp).
// A photo over twice as fine as the crop is first area-downscaled (the part
// the crop sees), so that the warp does not alias.
cv::Mat WarpCropFromPhoto(const cv::Mat& rgb, const cv::Matx33d& canvas_from_photo, const CropRect& rect,
                          cv::Size out) {
  const cv::Matx33d photo_from_canvas = canvas_from_photo.inv();
  // Output pixel centres -> canvas -> photo.
  const double sx = static_cast<double>(rect.width()) / out.width;
  const double sy = static_cast<double>(rect.height()) / out.height;
  const cv::Matx33d canvas_from_out(sx, 0, rect.col0 + 0.5 * sx - 0.5, 0, sy, rect.row0 + 0.5 * sy - 0.5, 0, 0, 1);
  cv::Matx33d photo_from_out = photo_from_canvas * canvas_from_out;
  const double photo_per_out =
      std::sqrt(std::abs(photo_from_out(0, 0) * photo_from_out(1, 1) - photo_from_out(0, 1) * photo_from_out(1, 0)));
  cv::Mat source = rgb;
  if (photo_per_out > 2) {
    // Bounding box of the crop in the photo, downscaled by photo_per_out.
    double x0 = rgb.cols, y0 = rgb.rows, x1 = 0, y1 = 0;
    for (int i = 0; i < 4; ++i) {
      const cv::Point2d p = ApplyTransform(photo_from_out, cv::Point2d((i & 1) ? out.width : -1, (i & 2) ? out.height : -1));
      x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
    }
    const cv::Rect roi = cv::Rect(cv::Point(static_cast<int>(std::floor(std::max(x0, 0.0))),
                                            static_cast<int>(std::floor(std::max(y0, 0.0)))),
                                  cv::Point(static_cast<int>(std::ceil(std::min(x1, double(rgb.cols)))),
                                            static_cast<int>(std::ceil(std::min(y1, double(rgb.rows))))));
    if (roi.width > 0 && roi.height > 0) {
      const cv::Size small(std::max(1, static_cast<int>(std::lround(roi.width / photo_per_out))),
                           std::max(1, static_cast<int>(std::lround(roi.height / photo_per_out))));
      cv::resize(rgb(roi), source, small, 0, 0, cv::INTER_AREA);
      // Photo pixel (x, y) -> small pixel, centres to centres.
      const double fx = static_cast<double>(small.width) / roi.width;
      const double fy = static_cast<double>(small.height) / roi.height;
      const cv::Matx33d small_from_photo(fx, 0, (0.5 - roi.x) * fx - 0.5, 0, fy, (0.5 - roi.y) * fy - 0.5, 0, 0, 1);
      photo_from_out = small_from_photo * photo_from_out;
    }
  }
  const cv::Matx23d map(photo_from_out(0, 0), photo_from_out(0, 1), photo_from_out(0, 2), photo_from_out(1, 0),
                        photo_from_out(1, 1), photo_from_out(1, 2));
  cv::Mat crop;
  cv::warpAffine(source, crop, map, out, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT,
                 cv::Scalar::all(0));
  return crop;
}

absl::Status CheckRect(const CropRect& r) {
  if (r.row1 <= r.row0 || r.col1 <= r.col0) {
    return absl::FailedPreconditionError(absl::StrCat("empty crop rows [", r.row0, ", ", r.row1,
                                                      ") cols [", r.col0, ", ", r.col1, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AlignResult> FaceAligner::CropAlign(const cv::Mat& rgb) const {
  RETURN_IF_ERROR(CheckInput(rgb));
  if (landmarks_ == nullptr) {
    return absl::FailedPreconditionError("CropAlign needs a landmark source");
  }
  ASSIGN_OR_RETURN(std::vector<FaceDetection> faces, detector_->Detect(rgb));
  if (faces.empty()) return absl::NotFoundError("no face detected in the photo");
  ASSIGN_OR_RETURN(FaceDetection first, SelectFace(faces));
  absl::StatusOr<AlignResult> result = CropAlignFace(rgb, first);
  if (result.ok()) result->num_faces = static_cast<int>(faces.size());
  return result;
}

absl::StatusOr<AlignResult> FaceAligner::CropAlignFace(const cv::Mat& rgb,
                                                       const FaceDetection& first) const {
  RETURN_IF_ERROR(CheckInput(rgb));
  if (landmarks_ == nullptr) {
    return absl::FailedPreconditionError("CropAlign needs a landmark source");
  }
  AlignResult result;
  result.first_face = first;

  ASSIGN_OR_RETURN(std::vector<cv::Point2d> src, landmarks_->Landmarks(rgb, first));
  result.landmarks_src = src;
  ASSIGN_OR_RETURN(cv::Matx33d matrix, EstimateSimilarity(src, landmarks_->Template()));
  result.matrix = matrix;
  if (options_.flow == CropFlow::kFast) {
    RETURN_IF_ERROR(FastCrop(rgb, &result));
    return result;
  }
  const int canvas = options_.canvas_size;
  ASSIGN_OR_RETURN(cv::Mat warped,
                   WarpSimilarity(rgb, matrix, cv::Size(canvas, canvas),
                                  options_.compat ? WarpRounding::kTruncateLikeReference : WarpRounding::kRound));

  absl::StatusOr<std::vector<FaceDetection>> second;
  if (options_.second_detection_region) {
    if (!(options_.region_margin >= 0 && std::isfinite(options_.region_margin))) {
      return absl::InvalidArgumentError("AlignOptions.region_margin must be finite and >= 0");
    }
    second = detector_->DetectInRegion(warped, ExpectedFaceRegion(first.box, matrix, options_.region_margin));
    // Nothing around the expected place: search the whole canvas.
    if (second.ok() && second->empty()) second = detector_->Detect(warped);
  } else {
    second = detector_->Detect(warped);
  }
  RETURN_IF_ERROR(second);
  if (second->empty()) return absl::NotFoundError("no face detected after alignment");
  ASSIGN_OR_RETURN(FaceDetection face, SelectFace(*second));
  result.face = face;
  result.box_clamped = ClampBox(face.box, canvas, canvas, options_.compat, false);
  result.rect = EnlargedCropRect(result.box_clamped, canvas, canvas, options_.enlarge_num,
                                 options_.enlarge_den, options_.compat, &result.pads_h_w);
  RETURN_IF_ERROR(CheckRect(result.rect));
  const cv::Mat raw =
      warped(cv::Range(result.rect.row0, result.rect.row1), cv::Range(result.rect.col0, result.rect.col1));
  if (options_.output_size > 0) {
    cv::resize(raw, result.crop, cv::Size(options_.output_size, options_.output_size), 0, 0,
               cv::INTER_CUBIC);
  } else {
    result.crop = raw.clone();
  }
  if (options_.keep_intermediates) {
    result.raw_crop = raw.clone();
    result.warped = warped;
  }
  return result;
}

absl::Status FaceAligner::FastCrop(const cv::Mat& rgb, AlignResult* result) const {
  const int canvas = options_.canvas_size;
  result->face = result->first_face;
  result->face.box = PredictedCanvasBox(result->first_face.box, result->matrix);
  for (auto& p : result->face.landmarks) {
    const cv::Point2d q = ApplyTransform(result->matrix, cv::Point2d(p[0], p[1]));
    p = {static_cast<float>(q.x), static_cast<float>(q.y)};
  }
  result->box_clamped = ClampBox(result->face.box, canvas, canvas, options_.compat, false);
  result->rect = EnlargedCropRect(result->box_clamped, canvas, canvas, options_.enlarge_num, options_.enlarge_den,
                                  options_.compat, &result->pads_h_w);
  RETURN_IF_ERROR(CheckRect(result->rect));
  const cv::Size out = options_.output_size > 0 ? cv::Size(options_.output_size, options_.output_size)
                                                : cv::Size(result->rect.width(), result->rect.height());
  result->crop = WarpCropFromPhoto(rgb, result->matrix, result->rect, out);
  if (options_.keep_intermediates) result->raw_crop = result->crop;
  return absl::OkStatus();
}

absl::StatusOr<AlignResult> FaceAligner::CropMsra(const cv::Mat& rgb) const {
  RETURN_IF_ERROR(CheckInput(rgb));
  AlignResult result;
  ASSIGN_OR_RETURN(std::vector<FaceDetection> faces, detector_->Detect(rgb));
  result.num_faces = static_cast<int>(faces.size());
  if (faces.empty()) return absl::NotFoundError("no face detected in the photo");
  ASSIGN_OR_RETURN(FaceDetection face, SelectFace(faces));
  result.face = face;
  result.box_clamped = ClampBox(face.box, rgb.cols, rgb.rows, options_.compat, /*swap_wh=*/options_.compat);
  result.rect = EnlargedCropRect(result.box_clamped, rgb.cols, rgb.rows, options_.enlarge_num,
                                 options_.enlarge_den, options_.compat, &result.pads_h_w);
  RETURN_IF_ERROR(CheckRect(result.rect));
  result.crop = rgb(cv::Range(result.rect.row0, result.rect.row1),
                    cv::Range(result.rect.col0, result.rect.col1))
                    .clone();
  return result;
}

}  // namespace dmue::preprocessing
