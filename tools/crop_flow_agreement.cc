// How often the fast crop flow (preprocessing/face_aligner.h, CropFlow::kFast)
// gives the model the same top-1 class as the exact crop-align flow, on real
// faces, and what each flow costs. For every image of a label list: detect,
// keep the most probable face, crop it both ways (inference/photo_analyzer.h
// CropFace), classify both crops, compare with each other and with the label.
//
//   bazel run //tools:crop_flow_agreement -- \
//     --checkpoint=serving/models/ferplus_resnet18.pth \
//     --images=../shared/data/fer2013_ferplus/FER2013Valid \
//     --list=../shared/data/fer2013_ferplus/FER2013Valid/label.csv --format=ferplus \
//     --detector_dir=../shared/models/mtcnn --upscale=4 --pad=0.5 --output=agreement.json
//
// Small face crops (FERPlus' 48x48) are upscaled (bicubic) and padded with
// their replicated border so that MTCNN sees a face inside a scene.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "datasets/label_list.h"
#include "dmue/base/files.h"
#include "dmue/base/status_macros.h"
#include "dmue/base/workspace.h"
#include "dmue/io/image_decode.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "inference/classifier.h"
#include "inference/photo_analyzer.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"

DEFINE_string(checkpoint, "", "model bundle (weights; the spec beside it)");
DEFINE_string(images, "", "folder the list's paths are relative to");
DEFINE_string(list, "", "label list");
DEFINE_string(format, "ferplus", "label list format: ferplus or reference");
DEFINE_string(detector_dir, "", "MTCNN weights folder (pnet.pt, rnet.pt, onet.pt)");
DEFINE_double(upscale, 1, "resize factor applied to every image before detection (bicubic)");
DEFINE_double(pad, 0, "border added on each side, as a fraction of the (upscaled) side, replicated");
DEFINE_int64(limit, 0, "at most this many images (0: all)");
DEFINE_string(output, "", "JSON summary (optional)");

namespace dmue::tools {
namespace {

struct Tally {
  int64_t images = 0, undetected = 0, compared = 0, agree = 0;
  int64_t exact_fallbacks = 0;  // the exact flow's second detection missed
  int64_t exact_correct = 0, fast_correct = 0;
  double exact_crop_ms = 0, fast_crop_ms = 0;
};

cv::Mat PhotoFromFace(const cv::Mat& rgb) {
  cv::Mat scaled = rgb;
  if (FLAGS_upscale != 1) cv::resize(rgb, scaled, cv::Size(), FLAGS_upscale, FLAGS_upscale, cv::INTER_CUBIC);
  if (FLAGS_pad <= 0) return scaled;
  const int py = static_cast<int>(scaled.rows * FLAGS_pad), px = static_cast<int>(scaled.cols * FLAGS_pad);
  cv::Mat padded;
  cv::copyMakeBorder(scaled, padded, py, py, px, px, cv::BORDER_REPLICATE);
  return padded;
}

int Argmax(const std::vector<float>& p, int offset, int n) {
  int best = 0;
  for (int c = 1; c < n; ++c) {
    if (p[offset + c] > p[offset + best]) best = c;
  }
  return best;
}

// Crops the face both ways, timing each.
absl::StatusOr<std::vector<cv::Mat>> BothCrops(const preprocessing::FaceAligner& exact,
                                               const preprocessing::FaceAligner& fast, const cv::Mat& photo,
                                               const preprocessing::FaceDetection& face, Tally* tally) {
  // CropFace's own flow, unrolled once so that its fallback is counted
  // without aligning the face a second time.
  absl::Time t = absl::Now();
  absl::StatusOr<preprocessing::AlignResult> aligned = exact.CropAlignFace(photo, face);
  cv::Mat exact_crop;
  if (aligned.ok()) {
    exact_crop = aligned->crop;
  } else {
    ++tally->exact_fallbacks;
    ASSIGN_OR_RETURN(exact_crop, inference::CropFace(exact, photo, face));
  }
  tally->exact_crop_ms += absl::ToDoubleMilliseconds(absl::Now() - t);
  t = absl::Now();
  ASSIGN_OR_RETURN(cv::Mat fast_crop, inference::CropFace(fast, photo, face));
  tally->fast_crop_ms += absl::ToDoubleMilliseconds(absl::Now() - t);
  return std::vector<cv::Mat>{exact_crop, fast_crop};
}

absl::Status CompareOne(const preprocessing::Mtcnn& detector, const preprocessing::FaceAligner& exact,
                        const preprocessing::FaceAligner& fast, const inference::Classifier& classifier,
                        const datasets::LabelEntry& entry, Tally* tally) {
  const std::string path = absl::StrCat(FLAGS_images, "/", entry.path);
  ASSIGN_OR_RETURN(cv::Mat rgb, io::ReadImageRgb(path));
  const cv::Mat photo = PhotoFromFace(rgb);
  ++tally->images;
  ASSIGN_OR_RETURN(std::vector<preprocessing::FaceDetection> faces, detector.Detect(photo));
  inference::KeepMostProbable(1, &faces);
  if (faces.empty()) {
    ++tally->undetected;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::vector<cv::Mat> crops, BothCrops(exact, fast, photo, faces[0], tally));
  ASSIGN_OR_RETURN(std::vector<float> inputs, inference::PreprocessFaces(crops, classifier.spec().input(), path));
  ASSIGN_OR_RETURN(std::vector<float> p, classifier.Classify(inputs.data(), 2));
  const int c = classifier.num_classes();
  const int exact_top = Argmax(p, 0, c), fast_top = Argmax(p, c, c);
  ++tally->compared;
  tally->agree += exact_top == fast_top;
  tally->exact_correct += exact_top == entry.label;
  tally->fast_correct += fast_top == entry.label;
  return absl::OkStatus();
}

std::string SummaryJson(const Tally& t) {
  const double n = std::max<int64_t>(1, t.compared);
  return absl::StrFormat(
      "{\"images\": %d, \"undetected\": %d, \"compared\": %d, \"top1_agreement\": %.5f, "
      "\"exact_second_detection_missed\": %d, \"exact_accuracy\": %.5f, \"fast_accuracy\": %.5f, "
      "\"exact_crop_ms_mean\": %.3f, \"fast_crop_ms_mean\": %.3f}\n",
      t.images, t.undetected, t.compared, t.agree / n, t.exact_fallbacks, t.exact_correct / n,
      t.fast_correct / n, t.exact_crop_ms / n, t.fast_crop_ms / n);
}

absl::StatusOr<datasets::LabelList> ReadList() {
  if (FLAGS_format == "ferplus") return datasets::ReadLabelList(FLAGS_list, datasets::ListFormat::kFerPlus);
  if (FLAGS_format == "reference") return datasets::ReadLabelList(FLAGS_list, datasets::ListFormat::kReference);
  return absl::InvalidArgumentError(absl::StrCat("--format: expected ferplus or reference, got ", FLAGS_format));
}

absl::Status Run() {
  for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--checkpoint", FLAGS_checkpoint},
                                    {"--images", FLAGS_images},
                                    {"--list", FLAGS_list},
                                    {"--detector_dir", FLAGS_detector_dir}}) {
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " is required"));
  }
  if (!(FLAGS_upscale > 0) || !(FLAGS_pad >= 0)) {
    return absl::InvalidArgumentError("--upscale must be > 0 and --pad >= 0");
  }
  at::set_num_threads(1);
  inference::ClassifierOptions options;
  options.precision = inference::PrecisionChoice::kFloat32;  // the flows differ, not the arithmetic
  ASSIGN_OR_RETURN(std::unique_ptr<inference::Classifier> classifier,
                   inference::Classifier::Load(FLAGS_checkpoint, "", options));
  ASSIGN_OR_RETURN(std::unique_ptr<preprocessing::Mtcnn> detector, preprocessing::Mtcnn::Load(FLAGS_detector_dir));
  preprocessing::MtcnnLandmarkSource landmarks;
  preprocessing::AlignOptions align;
  const preprocessing::FaceAligner exact(detector.get(), &landmarks, align);
  align.flow = preprocessing::CropFlow::kFast;
  const preprocessing::FaceAligner fast(detector.get(), &landmarks, align);
  ASSIGN_OR_RETURN(datasets::LabelList list, ReadList());
  const int64_t total = FLAGS_limit > 0 ? std::min<int64_t>(FLAGS_limit, list.entries.size()) : list.entries.size();
  Tally tally;
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < total; ++i) {
    RETURN_IF_ERROR(CompareOne(*detector, exact, fast, *classifier, list.entries[i], &tally));
    if ((i + 1) % 200 == 0 || i + 1 == total) {
      const double s = absl::ToDoubleSeconds(absl::Now() - start);
      LOG(INFO) << absl::StrFormat("%d / %d images, %.1f images/s, ETA %.0f s; agreement %.4f over %d faces",
                                   i + 1, total, (i + 1) / s, (total - i - 1) / ((i + 1) / s),
                                   tally.agree / std::max(1.0, double(tally.compared)), tally.compared);
    }
  }
  const std::string json = SummaryJson(tally);
  std::printf("%s", json.c_str());
  if (!FLAGS_output.empty()) RETURN_IF_ERROR(WriteFileAtomically(FLAGS_output, json));
  return absl::OkStatus();
}

}  // namespace
}  // namespace dmue::tools

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) LOG(FATAL) << s;
  if (absl::Status s = dmue::tools::Run(); !s.ok()) {
    LOG(ERROR) << s;
    return 1;
  }
  return 0;
}
