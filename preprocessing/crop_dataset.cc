#include "preprocessing/crop_dataset.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "dmue/base/files.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dmue/base/image_write.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/image_decode.h"
#include "preprocessing/crop_config.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"
#include "preprocessing/torchscript_landmarks.h"

namespace dmue::preprocessing {
namespace fs = std::filesystem;
namespace {

std::string LowerExtension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  if (!ext.empty() && ext[0] == '.') ext = ext.substr(1);
  return absl::AsciiStrToLower(ext);
}

std::string FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return absl::StrFormat("%dh%02dm%02ds", t / 3600, (t / 60) % 60, t % 60);
  if (t >= 60) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%ds", t);
}

// Writes `rgb` to `path` crash-safely (an existing output is always complete,
// which resume relies on), creating its folder first.
absl::Status WriteImageAtomically(const std::string& path, const cv::Mat& rgb, int jpeg_quality) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create folder for ", path, ": ", ec.message()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return WriteImage(path, bgr, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality});
}


cv::Mat ContactSheet(const std::vector<cv::Mat>& thumbs, int cell) {
  const int n = static_cast<int>(thumbs.size());
  const int cols = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))));
  const int rows = (n + cols - 1) / cols;
  cv::Mat sheet(rows * cell, cols * cell, CV_8UC3, cv::Scalar(40, 40, 40));
  for (int i = 0; i < n; ++i) {
    thumbs[i].copyTo(sheet(cv::Rect((i % cols) * cell, (i / cols) * cell, cell, cell)));
  }
  return sheet;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListImages(const CropConfig& config) {
  std::vector<std::string> items;
  if (!config.label_list().empty()) {
    std::ifstream in(config.label_list());
    if (!in) {
      return absl::NotFoundError(absl::StrCat("CropConfig.label_list: cannot open '",
                                              config.label_list(), "'"));
    }
    std::string line;
    while (std::getline(in, line)) {
      const std::string s(absl::StripAsciiWhitespace(line));
      if (s.empty() || s[0] == '#') continue;
      const size_t end = s.find_first_of(" \t,");
      items.push_back(s.substr(0, end));
    }
  } else {
    const std::vector<std::string> exts = ImageExtensions(config);
    std::error_code ec;
    fs::recursive_directory_iterator it(config.input_root(),
                                        fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      return absl::NotFoundError(absl::StrCat("CropConfig.input_root: cannot list '",
                                              config.input_root(), "': ", ec.message()));
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec)) continue;
      const std::string path = it->path().string();
      if (std::find(exts.begin(), exts.end(), LowerExtension(path)) == exts.end()) continue;
      items.push_back(fs::relative(it->path(), config.input_root()).string());
    }
    std::sort(items.begin(), items.end());
  }
  if (config.limit() > 0 && static_cast<int64_t>(items.size()) > config.limit()) {
    items.resize(config.limit());
  }
  return items;
}

std::string OutputRelativePath(const CropConfig& config, const std::string& relative) {
  fs::path p(relative);
  switch (config.output_format()) {
    case CropConfig::PNG:
      p.replace_extension(".png");
      break;
    case CropConfig::JPEG:
      p.replace_extension(".jpg");
      break;
    default:
      if (p.extension().empty()) p.replace_extension(".png");
      break;
  }
  return p.string();
}

absl::StatusOr<CropRunStats> RunCropDataset(const CropConfig& config, std::ostream& log) {
  RETURN_IF_ERROR(ValidateCropConfig(config));
  if (config.mtcnn_dir().empty()) return absl::InvalidArgumentError("CropConfig.mtcnn_dir: must be set");
  ASSIGN_OR_RETURN(std::vector<std::string> items, ListImages(config));

  MtcnnOptions mtcnn_options;
  mtcnn_options.min_face_size = config.min_face_size();
  mtcnn_options.compat = config.compat();
  if (config.max_decoded_side() > 0) {
    mtcnn_options.max_input_side = static_cast<int>(config.max_decoded_side());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Mtcnn> mtcnn, Mtcnn::Load(config.mtcnn_dir(), mtcnn_options));
  std::unique_ptr<LandmarkSource> landmarks;
  if (!config.landmark_model().empty()) {
    ASSIGN_OR_RETURN(auto ts, TorchScriptLandmarkSource::Load(config.landmark_model(), config.landmark_template()));
    landmarks = std::move(ts);
  } else {
    landmarks = std::make_unique<MtcnnLandmarkSource>();
  }
  AlignOptions align_options;
  align_options.compat = config.compat();
  align_options.selection = config.multi_face() == CropConfig::MOST_CONFIDENT
                                ? FaceSelection::kMostConfident
                                : FaceSelection::kLargest;
  align_options.output_size = config.output_size();
  align_options.second_detection_region = !config.second_detection_whole_canvas();
  const FaceAligner aligner(mtcnn.get(), landmarks.get(), align_options);
  io::ImageLimits limits;
  limits.max_bytes = config.max_image_bytes();
  limits.max_pixels = config.max_image_pixels();
  limits.max_decoded_side = config.max_decoded_side();

  std::error_code ec;
  fs::create_directories(config.output_root(), ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("CropConfig.output_root: cannot create '",
                                            config.output_root(), "': ", ec.message()));
  }

  CropRunStats stats;
  stats.total = static_cast<int64_t>(items.size());
  std::mutex mu;  // Guards stats, thumbs and progress state.
  std::vector<cv::Mat> thumbs;
  constexpr int kCell = 128;
  const auto start = std::chrono::steady_clock::now();
  auto last_print = start;
  int64_t finished = 0;
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto progress_line = [&](bool final_line) {
    const double t = elapsed();
    const int64_t worked = finished - stats.skipped_existing;
    const double rate = t > 0 ? worked / t : 0;
    const double eta = rate > 0 ? (stats.total - finished) / rate : NAN;
    log << absl::StrFormat("crop_align: %d/%d (%.1f%%) %.2f img/s, %s%s, %d written, %d resumed, %d failed\n",
                           finished, stats.total,
                           stats.total ? 100.0 * finished / stats.total : 100.0, rate,
                           final_line ? "took " : "ETA ",
                           FormatDuration(final_line ? t : eta), stats.written,
                           stats.skipped_existing, static_cast<int64_t>(stats.failures.size()));
    log.flush();
  };

  std::atomic<size_t> next{0};
  auto worker = [&] {
    at::set_num_threads(config.intra_op_threads());
    for (size_t i = next++; i < items.size(); i = next++) {
      const std::string& rel = items[i];
      const std::string out_path =
          (fs::path(config.output_root()) / OutputRelativePath(config, rel)).string();
      std::string reason, detail;
      cv::Mat crop;
      bool skipped = false;
      std::error_code fec;
      if (fs::is_regular_file(out_path, fec) && fs::file_size(out_path, fec) > 0) {
        skipped = true;
      } else {
        absl::StatusOr<io::DecodedImage> image =
            io::ReadImage((fs::path(config.input_root()) / rel).string(), limits);
        if (!image.ok()) {
          reason = "unreadable";
          detail = std::string(image.status().message());
        } else {
          absl::StatusOr<AlignResult> result = config.flow() == CropConfig::CROP_MSRA
                                                   ? aligner.CropMsra(image->rgb)
                                                   : aligner.CropAlign(image->rgb);
          if (!result.ok()) {
            const absl::Status& st = result.status();
            detail = std::string(st.message());
            if (absl::IsNotFound(st)) {
              reason = absl::StrContains(detail, "after alignment") ? "no_face_after_alignment"
                                                                     : "no_face";
            } else if (absl::IsFailedPrecondition(st)) {
              reason = "empty_crop";
            } else {
              reason = "error";
            }
          } else {
            const float prob = config.flow() == CropConfig::CROP_MSRA ? result->face.prob
                                                                      : result->first_face.prob;
            if (prob < config.min_face_prob()) {
              reason = "low_confidence";
              detail = absl::StrCat("face probability ", prob, " < min_face_prob ",
                                    config.min_face_prob());
            } else {
              absl::Status w = WriteImageAtomically(out_path, result->crop, config.jpeg_quality());
              if (!w.ok()) {
                reason = "write_failed";
                detail = std::string(w.message());
              } else {
                crop = result->crop;
              }
            }
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      ++finished;
      if (skipped) {
        ++stats.skipped_existing;
      } else if (!reason.empty()) {
        stats.failures.push_back({rel, reason, detail});
        ++stats.failures_by_reason[reason];
      } else {
        ++stats.written;
        if (!config.contact_sheet().empty() &&
            static_cast<int>(thumbs.size()) < config.contact_sheet_count()) {
          cv::Mat thumb;
          cv::resize(crop, thumb, cv::Size(kCell, kCell), 0, 0, cv::INTER_AREA);
          thumbs.push_back(thumb);
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (config.progress_interval_s() > 0 &&
          std::chrono::duration<double>(now - last_print).count() >= config.progress_interval_s()) {
        last_print = now;
        progress_line(false);
      }
    }
  };
  const int workers = std::min<int>(config.workers(), std::max<size_t>(1, items.size()));
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  stats.seconds = elapsed();
  progress_line(true);

  std::sort(stats.failures.begin(), stats.failures.end(),
            [](const CropFailure& a, const CropFailure& b) { return a.path < b.path; });
  std::string text;
  for (const CropFailure& f : stats.failures) {
    std::string d = f.detail;
    std::replace(d.begin(), d.end(), '\t', ' ');
    std::replace(d.begin(), d.end(), '\n', ' ');
    absl::StrAppend(&text, f.path, "\t", f.reason, "\t", d, "\n");
  }
  RETURN_IF_ERROR(WriteFileAtomically((fs::path(config.output_root()) / config.failure_list()).string(), text));
  if (!config.contact_sheet().empty() && !thumbs.empty()) {
    RETURN_IF_ERROR(WriteImageAtomically((fs::path(config.output_root()) / config.contact_sheet()).string(),
                                         ContactSheet(thumbs, kCell), 95));
  }
  return stats;
}

}  // namespace dmue::preprocessing
