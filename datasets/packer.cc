#include "datasets/packer.h"

#include <filesystem>
#include <fstream>

#include <glog/logging.h>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "datasets/fer2013_csv.h"
#include "datasets/lmdb_dataset.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/util/progress.h"

namespace dmue::datasets {
namespace {

constexpr FieldErrors kFieldError("PackOptions");

}  // namespace

absl::StatusOr<PackReport> PackLmdb(const PackOptions& options) {
  if (options.output.empty()) return kFieldError("output", "empty");
  const bool csv = options.format == ListFormat::kFer2013Csv;
  if (options.image_root.empty() && !csv) return kFieldError("image_root", "empty");
  if (options.resize < 0) return kFieldError("resize", "must be >= 0");
  // Images come from files under image_root, or from the pixel csv itself.
  absl::StatusOr<LabelList> list;
  Fer2013Csv pixels;
  if (csv) {
    ASSIGN_OR_RETURN(Fer2013Csv parsed, ReadFer2013Csv(options.list_path, options.parse.only_split));
    pixels = std::move(parsed);
    list = LabelList{pixels.entries, 0};
  } else {
    list = ReadLabelList(options.format == ListFormat::kFolder ? options.image_root : options.list_path,
                         options.format, options.parse);
  }
  RETURN_IF_ERROR(list);
  ASSIGN_OR_RETURN(std::unique_ptr<LmdbWriter> writer,
                   LmdbWriter::Open(options.output, {.encoding = options.encoding,
                                                     .jpeg_quality = options.jpeg_quality,
                                                     .commit_every = options.commit_every,
                                                     .initial_map_size = options.initial_map_size}));
  const std::string failures_path =
      options.failures_path.empty() ? options.output + "/failures.txt" : options.failures_path;
  std::ofstream failures(failures_path, std::ios::trunc);
  if (!failures) return absl::PermissionDeniedError(absl::StrCat("cannot write failure list '", failures_path, "'"));

  PackReport report;
  report.listed = int64_t(list->entries.size());
  report.dropped = list->num_dropped;
  std::vector<LabelEntry> packed;
  ProgressMeter progress(absl::StrCat("pack_lmdb ", options.output), report.listed, 1.0);
  for (size_t index = 0; index < list->entries.size(); ++index) {
    const LabelEntry& entry = list->entries[index];
    const std::string key = LmdbKey(entry);
    if (writer->Contains(key)) {
      ++report.already_present;
      packed.push_back(entry);
    } else {
      std::string file;
      absl::StatusOr<cv::Mat> image;
      if (csv) {
        file = absl::StrCat(options.list_path, " row ", entry.path);
        cv::Mat rgb;
        cv::cvtColor(pixels.images[index], rgb, cv::COLOR_GRAY2RGB);
        image = rgb;
      } else {
        file = (std::filesystem::path(options.image_root) / (options.path_is_key ? key : entry.path)).string();
        image = ReadImageRgb(file);
      }
      absl::Status status = image.status();
      if (status.ok() && options.resize > 0 &&
          (image->rows != options.resize || image->cols != options.resize)) {
        cv::Mat resized;
        cv::resize(*image, resized, cv::Size(options.resize, options.resize), 0, 0, cv::INTER_CUBIC);
        *image = resized;
      }
      if (status.ok()) {
        // Grey sources (all channels equal) are stored as 1 channel in encoded mode.
        cv::Mat to_store = *image;
        if (options.encoding != ImageEncoding::kRaw) {
          cv::Mat channels[3];
          cv::split(*image, channels);
          if (cv::countNonZero(channels[0] != channels[1]) == 0 && cv::countNonZero(channels[0] != channels[2]) == 0) {
            to_store = channels[0];
          }
        }
        status = writer->Put(key, to_store);
      }
      if (status.ok()) {
        ++report.written;
        packed.push_back(entry);
      } else if (absl::IsInvalidArgument(status) || absl::IsNotFound(status) || absl::IsDataLoss(status) ||
                 absl::IsResourceExhausted(status)) {
        ++report.failed;
        failures << key << "\t" << file << "\t" << status.message() << "\n";
        LOG(WARNING) << "skipping " << file << ": " << status.message();
      } else {
        return status;  // LMDB trouble: stop (committed records stay valid)
      }
    }
    if (options.show_progress) progress.Add(1);
  }
  if (options.show_progress) progress.Finish();
  report.items_per_second = progress.ItemsPerSecond();
  RETURN_IF_ERROR(writer->Finish(&packed));
  bool with_distribution = false;
  for (const LabelEntry& e : packed) with_distribution |= !e.distribution.empty();
  const std::string list_output = options.list_output.empty() ? options.output + "/labels.txt" : options.list_output;
  RETURN_IF_ERROR(WriteLabelList(list_output, packed, false));
  if (with_distribution) {
    RETURN_IF_ERROR(WriteLabelList(list_output + ".soft", packed, true));
  }
  failures.close();
  return report;
}

}  // namespace dmue::datasets
