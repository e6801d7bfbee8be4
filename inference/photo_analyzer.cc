#include "inference/photo_analyzer.h"

#include <algorithm>
#include <utility>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "glog/logging.h"
#include "inference/face_input.h"

namespace dmue::inference {
namespace {

using preprocessing::FaceDetection;

double MsSince(absl::Time start) { return absl::ToDoubleMilliseconds(absl::Now() - start); }

}  // namespace

absl::Status CheckPhotoBytes(absl::string_view bytes, absl::string_view source, const PhotoLimits& limits) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty image"));
  if (static_cast<int64_t>(bytes.size()) > limits.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(source, ": ", bytes.size(), " bytes is over the limit of ", limits.max_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<io::DecodedImage> DecodePhoto(absl::string_view bytes, absl::string_view source,
                                             const PhotoLimits& limits) {
  RETURN_IF_ERROR(CheckPhotoBytes(bytes, source, limits));
  io::ImageLimits decode;
  decode.max_bytes = limits.max_bytes;
  decode.max_pixels = limits.max_pixels;
  decode.max_decoded_side = limits.max_detection_side;
  return io::DecodeImage(bytes, source, decode);
}

int KeepMostProbable(int max_faces, std::vector<FaceDetection>* faces) {
  const int found = static_cast<int>(faces->size());
  if (found <= max_faces) return 0;
  std::stable_sort(faces->begin(), faces->end(),
                   [](const FaceDetection& a, const FaceDetection& b) { return a.prob > b.prob; });
  faces->resize(std::max(0, max_faces));
  return found - static_cast<int>(faces->size());
}

absl::StatusOr<cv::Mat> CropFace(const preprocessing::FaceAligner& aligner, const cv::Mat& rgb,
                                 const FaceDetection& face) {
  absl::StatusOr<preprocessing::AlignResult> aligned = aligner.CropAlignFace(rgb, face);
  if (aligned.ok()) return aligned->crop;
  const preprocessing::AlignOptions& options = aligner.options();
  const std::array<float, 4> box =
      preprocessing::ClampBox(face.box, rgb.cols, rgb.rows, /*compat=*/false, /*swap_wh=*/false);
  const preprocessing::CropRect r = preprocessing::EnlargedCropRect(
      box, rgb.cols, rgb.rows, options.enlarge_num, options.enlarge_den, /*compat=*/false, nullptr);
  if (r.height() <= 0 || r.width() <= 0) {
    return absl::NotFoundError(absl::StrCat("the face at ", face.box[0], ",", face.box[1], " holds no pixel"));
  }
  const int side = options.output_size > 0 ? options.output_size : 256;
  cv::Mat crop;
  cv::resize(rgb(cv::Range(r.row0, r.row1), cv::Range(r.col0, r.col1)), crop, cv::Size(side, side), 0, 0,
             cv::INTER_CUBIC);
  VLOG(1) << "face at " << face.box[0] << "," << face.box[1] << ": " << aligned.status().message()
          << "; classified the unaligned crop";
  return crop;
}

PhotoFace MapToPhoto(const FaceDetection& face, double scale_x, double scale_y) {
  const float sx = static_cast<float>(scale_x), sy = static_cast<float>(scale_y);
  PhotoFace out;
  out.box = {face.box[0] / sx, face.box[1] / sy, face.box[2] / sx, face.box[3] / sy};
  out.score = face.prob;
  for (int k = 0; k < 5; ++k) out.landmarks[k] = {face.landmarks[k][0] / sx, face.landmarks[k][1] / sy};
  return out;
}

absl::StatusOr<std::vector<float>> PreprocessFaces(const std::vector<cv::Mat>& crops, const InputSpec& input,
                                                   absl::string_view source) {
  const int64_t item = FaceInputSize(input);
  std::vector<float> inputs(crops.size() * item);
  for (size_t i = 0; i < crops.size(); ++i) {
    if (absl::Status s = PreprocessFace(crops[i], input, inputs.data() + i * item); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": face ", i, ": ", s.message()));
    }
  }
  return inputs;
}

namespace {

preprocessing::AlignOptions AlignOptionsFor(preprocessing::CropFlow crop_flow) {
  preprocessing::AlignOptions options;
  options.flow = crop_flow;
  return options;
}

}  // namespace

PhotoAnalyzer::PhotoAnalyzer(std::unique_ptr<preprocessing::Mtcnn> detector, const PhotoLimits& limits,
                             const InputSpec& input, preprocessing::CropFlow crop_flow)
    : detector_(std::move(detector)),
      aligner_(detector_.get(), &landmarks_, AlignOptionsFor(crop_flow)),
      limits_(limits),
      input_(input) {}

absl::StatusOr<std::unique_ptr<PhotoAnalyzer>> PhotoAnalyzer::Create(const std::string& detector_dir,
                                                                     const PhotoLimits& limits,
                                                                     const InputSpec& input,
                                                                     preprocessing::CropFlow crop_flow) {
  ASSIGN_OR_RETURN(std::unique_ptr<preprocessing::Mtcnn> detector,
                   WithContext(preprocessing::Mtcnn::Load(detector_dir), absl::StrCat("detector_dir ", detector_dir)));
  return std::unique_ptr<PhotoAnalyzer>(new PhotoAnalyzer(std::move(detector), limits, input, crop_flow));
}

absl::Status PhotoAnalyzer::FindFaces(const io::DecodedImage& image, AnalyzedPhoto* photo,
                                      std::vector<cv::Mat>* crops) const {
  ASSIGN_OR_RETURN(std::vector<FaceDetection> faces, detector_->Detect(image.rgb));
  photo->faces_dropped = KeepMostProbable(limits_.max_faces, &faces);
  for (const FaceDetection& face : faces) {
    absl::StatusOr<cv::Mat> crop = CropFace(aligner_, image.rgb, face);
    if (!crop.ok()) continue;  // a box outside the image: nothing to classify
    photo->faces.push_back(MapToPhoto(face, image.scale_x, image.scale_y));
    crops->push_back(*std::move(crop));
  }
  return absl::OkStatus();
}

absl::StatusOr<AnalyzedPhoto> PhotoAnalyzer::Analyze(absl::string_view bytes, absl::string_view source,
                                                     bool skip_detection) const {
  AnalyzedPhoto photo;
  absl::Time t = absl::Now();
  ASSIGN_OR_RETURN(const io::DecodedImage image, DecodePhoto(bytes, source, limits_));
  photo.width = static_cast<int>(image.full_width);
  photo.height = static_cast<int>(image.full_height);
  photo.decode_ms = MsSince(t);

  t = absl::Now();
  std::vector<cv::Mat> crops;
  if (skip_detection) {
    PhotoFace whole;
    whole.box = {0, 0, static_cast<float>(photo.width), static_cast<float>(photo.height)};
    whole.score = 1;
    photo.faces.push_back(whole);
    crops.push_back(image.rgb);
  } else {
    RETURN_IF_ERROR(FindFaces(image, &photo, &crops));
  }
  photo.detect_ms = MsSince(t);

  t = absl::Now();
  ASSIGN_OR_RETURN(photo.inputs, PreprocessFaces(crops, input_, source));
  photo.preprocess_ms = MsSince(t);
  return photo;
}

}  // namespace dmue::inference
