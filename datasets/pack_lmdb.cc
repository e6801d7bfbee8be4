// Packs images + a label list into an LMDB, or verifies one.
//
//   pack_lmdb --images=.../FER2013Train --list=.../FER2013Train/label.csv \
//       --format=ferplus --label_mode=majority --split=train \
//       --output=/data/ferplus_train_lmdb --encoding=png --resize=0
//   pack_lmdb --verify --output=/data/ferplus_train_lmdb
//
// Formats: reference (train_<path> <label>), rafdb, ferplus, folder.
// Progress (items/s, ETA) goes to stderr; unreadable images are written to
// <output>/failures.txt and skipped; re-running resumes.
#include <cstdio>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "datasets/lmdb_dataset.h"
#include "datasets/packer.h"

DEFINE_string(images, "", "Image root folder.");
DEFINE_string(list, "", "Label list file (not needed for --format=folder).");
DEFINE_string(format, "reference", "reference | rafdb | ferplus | folder | fer2013_csv (pixels in the csv; --images unused).");
DEFINE_string(label_mode, "majority", "FERPlus: majority | plurality | distribution.");
DEFINE_bool(keep_distribution, false, "FERPlus: keep the vote distribution as a soft label.");
DEFINE_string(split, "train", "Split (key prefix) for formats without one.");
DEFINE_string(only_split, "", "Pack only entries of this split.");
DEFINE_int32(num_classes, 0, "Check labels < num_classes (0: no check).");
DEFINE_int64(max_lines, 0, "Read only this many list lines (0: all).");
DEFINE_bool(path_is_key, false, "Image files are named by the whole key <split>_<path>.");
DEFINE_string(output, "", "LMDB folder to write (or verify).");
DEFINE_string(encoding, "raw", "raw (reference layout) | png | jpeg.");
DEFINE_int32(resize, 256, "Resize to NxN with INTER_CUBIC (0 keeps the size).");
DEFINE_int32(jpeg_quality, 95, "JPEG quality.");
DEFINE_int64(commit_every, 1000, "Records per transaction.");
DEFINE_string(failures, "", "Failure list (default <output>/failures.txt).");
DEFINE_string(list_output, "", "Label list written for the packed entries (default <output>/labels.txt).");
DEFINE_bool(verify, false, "Verify --output instead of packing: decode every record.");

namespace dmue::datasets {
namespace {

absl::StatusOr<ListFormat> ParseFormat(const std::string& name) {
  if (name == "reference" || name == "affectnet") return ListFormat::kReference;
  if (name == "rafdb") return ListFormat::kRafDb;
  if (name == "ferplus") return ListFormat::kFerPlus;
  if (name == "folder") return ListFormat::kFolder;
  if (name == "fer2013_csv") return ListFormat::kFer2013Csv;
  return absl::InvalidArgumentError(absl::StrCat("--format: unknown '", name, "'"));
}

absl::StatusOr<FerPlusLabelMode> ParseMode(const std::string& name) {
  if (name == "majority") return FerPlusLabelMode::kMajority;
  if (name == "plurality") return FerPlusLabelMode::kPlurality;
  if (name == "distribution") return FerPlusLabelMode::kDistribution;
  return absl::InvalidArgumentError(absl::StrCat("--label_mode: unknown '", name, "'"));
}

int Verify() {
  absl::StatusOr<VerifyReport> report = VerifyLmdb(FLAGS_output);
  if (!report.ok()) {
    std::fprintf(stderr, "pack_lmdb --verify: %s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  for (const auto& [key, reason] : report->bad) std::printf("BAD\t%s\t%s\n", key.c_str(), reason.c_str());
  std::printf("%s: %lld records, %lld ok, %zu bad\n", FLAGS_output.c_str(),
              static_cast<long long>(report->num_records), static_cast<long long>(report->num_ok),
              report->bad.size());
  return report->ok() ? 0 : 2;
}

int Pack() {
  PackOptions options;
  auto format = ParseFormat(FLAGS_format);
  auto mode = ParseMode(FLAGS_label_mode);
  auto encoding = ParseImageEncoding(FLAGS_encoding);
  for (const absl::Status& s : {format.status(), mode.status(), encoding.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "pack_lmdb: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  options.image_root = FLAGS_images;
  options.list_path = FLAGS_list;
  options.format = *format;
  options.parse.default_split = FLAGS_split;
  options.parse.only_split = FLAGS_only_split;
  options.parse.ferplus_mode = *mode;
  options.parse.keep_distribution = FLAGS_keep_distribution;
  options.parse.num_classes = FLAGS_num_classes;
  options.parse.max_lines = FLAGS_max_lines;
  options.path_is_key = FLAGS_path_is_key;
  options.output = FLAGS_output;
  options.encoding = *encoding;
  options.resize = FLAGS_resize;
  options.jpeg_quality = FLAGS_jpeg_quality;
  options.commit_every = FLAGS_commit_every;
  options.failures_path = FLAGS_failures;
  options.list_output = FLAGS_list_output;
  absl::StatusOr<PackReport> report = PackLmdb(options);
  if (!report.ok()) {
    std::fprintf(stderr, "pack_lmdb: %s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "pack_lmdb: %lld listed (%lld dropped by the label rule), %lld written, %lld already present, "
               "%lld failed, %.0f items/s\n",
               static_cast<long long>(report->listed), static_cast<long long>(report->dropped),
               static_cast<long long>(report->written), static_cast<long long>(report->already_present),
               static_cast<long long>(report->failed), report->items_per_second);
  return 0;
}

}  // namespace
}  // namespace dmue::datasets

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Packs images + a label list into an LMDB (or --verify one).");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (FLAGS_output.empty()) {
    std::fprintf(stderr, "pack_lmdb: --output is required\n");
    return 1;
  }
  return FLAGS_verify ? dmue::datasets::Verify() : dmue::datasets::Pack();
}
