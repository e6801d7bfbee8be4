// Packs a folder of images + a label list into an LMDB (the pack_lmdb tool).
//
// Raw mode reproduces the reference make_lmdb.py: RGB, cv2.resize to
// resize x resize with INTER_CUBIC, raw bytes. Encoded modes store PNG/JPEG
// records (resized only if `resize` > 0). Unreadable images are listed in the
// failure file and skipped; the run continues. Re-running resumes (keys
// already stored are skipped). The label list of the packed entries is
// written next to the database and into its __labels__ record.
#ifndef DATASETS_PACKER_H_
#define DATASETS_PACKER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "datasets/image_codec.h"
#include "datasets/label_list.h"

namespace dmue::datasets {

struct PackOptions {
  std::string image_root;  // images are <image_root>/<entry.path> (or /<key>)
  std::string list_path;   // label list (for kFolder: ignored, image_root is read)
  ListFormat format = ListFormat::kReference;
  ParseOptions parse;
  bool path_is_key = false;  // image file name is the whole key (<split>_<path>)
  std::string output;        // LMDB folder
  ImageEncoding encoding = ImageEncoding::kRaw;
  int resize = 256;          // 0: keep the size (raw mode then needs equal sizes)
  int jpeg_quality = 95;
  int64_t commit_every = 1000;
  int64_t initial_map_size = int64_t{256} << 20;
  std::string list_output;     // default <output>/labels.txt
  std::string failures_path;   // default <output>/failures.txt
  bool show_progress = true;
};

struct PackReport {
  int64_t listed = 0;            // entries in the list (after dropping)
  int64_t dropped = 0;           // list lines dropped by the label rule
  int64_t written = 0;           // records written by this run
  int64_t already_present = 0;   // skipped on resume
  int64_t failed = 0;            // unreadable images (see failures file)
  double items_per_second = 0;
};

absl::StatusOr<PackReport> PackLmdb(const PackOptions& options);

}  // namespace dmue::datasets

#endif  // DATASETS_PACKER_H_
