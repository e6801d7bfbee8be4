// A photo to model inputs, in small stages (MediaPipe style), each usable and
// tested on its own:
//
//   DecodePhoto      bytes -> RGB under limits (dmue/io/image_decode.h: byte
//                    size, declared pixels, huge photos decoded downscaled)
//   Mtcnn::Detect    faces in the decoded image (preprocessing/mtcnn.h)
//   KeepMostProbable at most max_faces faces, the most probable
//   CropFace         the crop-align flow (the 256x256 crops DMUE trains on;
//                    exact, or fast: no second detection, see
//                    preprocessing/face_aligner.h), or the enlarged box when
//                    the exact flow's second detection misses
//   MapToPhoto       box and landmarks in pixels of the full-resolution photo
//   PreprocessFaces  crops -> model inputs (inference/face_input.h)
//
// PhotoAnalyzer chains them. Errors carry the status a server maps to its
// replies: InvalidArgument (bad or unsupported bytes), ResourceExhausted
// (over a limit); messages name `source`.
#ifndef INFERENCE_PHOTO_ANALYZER_H_
#define INFERENCE_PHOTO_ANALYZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/io/image_decode.h"
#include "dmue/model_spec.pb.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"

namespace dmue::inference {

struct PhotoLimits {
  int64_t max_bytes = int64_t{20} << 20;
  int64_t max_pixels = 50'000'000;  // declared width x height
  int max_detection_side = 2048;    // longer sides are decoded downscaled
  int max_faces = 64;
};

// One face, in pixels of the photo as sent (full resolution).
struct PhotoFace {
  std::array<float, 4> box = {0, 0, 0, 0};  // [x1, y1, x2, y2]
  float score = 0;                          // detector probability (1: not detected)
  // (x, y): left eye, right eye, nose, left and right mouth corners.
  std::array<std::array<float, 2>, 5> landmarks = {};
};

struct AnalyzedPhoto {
  int width = 0, height = 0;  // of the photo as sent
  std::vector<PhotoFace> faces;
  int faces_dropped = 0;      // found beyond max_faces
  std::vector<float> inputs;  // faces.size() preprocessed model inputs
  double decode_ms = 0, detect_ms = 0, preprocess_ms = 0;
};

// Refuses empty and oversized bytes (cheap: a server checks before it
// queues the photo for decoding).
absl::Status CheckPhotoBytes(absl::string_view bytes, absl::string_view source, const PhotoLimits& limits);

// CheckPhotoBytes, then decodes under `limits`.
absl::StatusOr<io::DecodedImage> DecodePhoto(absl::string_view bytes, absl::string_view source,
                                             const PhotoLimits& limits);

// Keeps the `max_faces` most probable faces (stable: ties keep the
// detector's order); returns how many were dropped.
int KeepMostProbable(int max_faces, std::vector<preprocessing::FaceDetection>* faces);

// The aligned crop of `face` (detected in `rgb`), or, when the second
// detection of the crop-align flow misses it (profile, blur), the box
// enlarged by the aligner's 256/224 resized to its output size: the face is
// classified unaligned rather than dropped. NotFound when the box holds no
// pixel of the image.
absl::StatusOr<cv::Mat> CropFace(const preprocessing::FaceAligner& aligner, const cv::Mat& rgb,
                                 const preprocessing::FaceDetection& face);

// A detection in an image decoded at (scale_x, scale_y) of the photo, in
// photo pixels.
PhotoFace MapToPhoto(const preprocessing::FaceDetection& face, double scale_x, double scale_y);

// Model inputs of the crops, one after the other; errors name the face.
absl::StatusOr<std::vector<float>> PreprocessFaces(const std::vector<cv::Mat>& crops, const InputSpec& input,
                                                   absl::string_view source);

class PhotoAnalyzer {
 public:
  // Loads MTCNN from `detector_dir` (pnet.pt, rnet.pt, onet.pt; errors name
  // the folder). `input` is the model's (ModelSpec.input); `crop_flow` picks
  // the exact crop-align flow or the fast one.
  static absl::StatusOr<std::unique_ptr<PhotoAnalyzer>> Create(const std::string& detector_dir,
                                                               const PhotoLimits& limits, const InputSpec& input,
                                                               preprocessing::CropFlow crop_flow);

  // Every face of the photo with its model input. With `skip_detection` the
  // photo is one aligned face crop, classified whole (what the reference's
  // inference.py does). Safe to call from several threads at once.
  absl::StatusOr<AnalyzedPhoto> Analyze(absl::string_view bytes, absl::string_view source,
                                        bool skip_detection) const;

  const PhotoLimits& limits() const { return limits_; }

 private:
  PhotoAnalyzer(std::unique_ptr<preprocessing::Mtcnn> detector, const PhotoLimits& limits, const InputSpec& input,
                preprocessing::CropFlow crop_flow);
  // Detects, keeps, crops and maps the faces of `image` into `photo`.
  absl::Status FindFaces(const io::DecodedImage& image, AnalyzedPhoto* photo, std::vector<cv::Mat>* crops) const;

  const std::unique_ptr<preprocessing::Mtcnn> detector_;
  preprocessing::MtcnnLandmarkSource landmarks_;
  const preprocessing::FaceAligner aligner_;
  const PhotoLimits limits_;
  const InputSpec input_;
};

}  // namespace dmue::inference

#endif  // INFERENCE_PHOTO_ANALYZER_H_
