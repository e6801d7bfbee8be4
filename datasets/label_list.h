// Label lists: which image (relative path) has which expression label, parsed
// from the formats the reference and the public FER datasets use.
//
//   * REFERENCE (AffectNet-style, the reference's lb2.txt): `train_<path> <label>`
//     or `test_<path> <label>`, labels 0-based. The whole first token is the LMDB
//     key; the split is the part before the first '_'. Optional extra columns
//     (our extension, written by WriteLabelList with soft labels) hold a
//     probability distribution over the classes.
//   * RAFDB (list_patition_label.txt): `<file> <label 1..7>`; labels become 0..6.
//     The split comes from the file name's prefix (`train_00001.jpg`).
//   * FERPLUS (FER2013Train/label.csv): `<file>,"(x, y, w, h)",v0,...,v9`, vote
//     counts for neutral, happiness, surprise, sadness, anger, disgust, fear,
//     contempt, unknown, NF. See FerPlusLabelMode for how labels are derived.
//   * FOLDER: `<root>/<class name>/<image>`; classes sorted by name (or given).
//
// Errors name the file and the 1-based line.
#ifndef DATASETS_LABEL_LIST_H_
#define DATASETS_LABEL_LIST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue::datasets {

struct LabelEntry {
  // Path relative to the image root (REFERENCE lists: the part after `<split>_`).
  std::string path;
  // "train", "test", "val", ... ; used as the LMDB key prefix `<split>_<path>`.
  std::string split;
  // 0-based class index, or -1 when the entry has no hard label.
  int label = -1;
  // Optional soft label: a probability distribution over the classes (sums to 1).
  std::vector<float> distribution;
};

// `<split>_<path>` (the reference make_lmdb.py key); just `path` if split is empty.
std::string LmdbKey(const LabelEntry& entry);

// kFer2013Csv (fer2013.csv with pixels) is read by fer2013_csv.h; the packer
// takes it directly, ReadLabelList refuses it.
enum class ListFormat { kReference, kRafDb, kFerPlus, kFolder, kFer2013Csv };

// How FERPlus vote counts become labels (8 classes in FERPlus order:
// 0 neutral, 1 happiness, 2 surprise, 3 sadness, 4 anger, 5 disgust, 6 fear,
// 7 contempt).
enum class FerPlusLabelMode {
  // The FERPlus "majority" rule: classes with a single vote are zeroed; the
  // top remaining class wins if it has more than half of the remaining votes;
  // images whose winner is unknown/NF, or with no such majority (ties), are
  // dropped. Reproduces the counts of shared/reference-accuracy.md (25,045
  // training images from FER2013Train/label.csv).
  kMajority,
  // argmax over all 10 columns (first on ties); dropped if it is unknown/NF.
  kPlurality,
  // The 8 emotion votes normalised to a distribution (kept as the soft label);
  // hard label = its argmax (first on ties). Dropped if no emotion vote.
  kDistribution,
};

struct ParseOptions {
  // Split assigned to entries of formats that have none (RAFDB without a
  // train_/test_ prefix, FERPLUS, FOLDER).
  std::string default_split = "train";
  // Only keep entries of this split (empty: keep all).
  std::string only_split;
  FerPlusLabelMode ferplus_mode = FerPlusLabelMode::kMajority;
  // FERPLUS: also attach the 8-class vote distribution to every kept entry.
  bool keep_distribution = false;
  // Labels must be in [0, num_classes) (0: no check; FERPLUS is always 8).
  int num_classes = 0;
  // Stop after this many lines (0: all). For tests and quick subsets.
  int64_t max_lines = 0;
  // FOLDER: class names in label order (empty: sorted sub-folder names).
  std::vector<std::string> folder_classes;
};

struct LabelList {
  std::vector<LabelEntry> entries;
  // Lines (or files) skipped on purpose (e.g. FERPlus images without a majority).
  int64_t num_dropped = 0;
};

absl::StatusOr<LabelList> ParseLabelList(absl::string_view text, ListFormat format,
                                         absl::string_view source, const ParseOptions& options = {});

// Reads `path` (a list file, or the root folder for kFolder).
absl::StatusOr<LabelList> ReadLabelList(const std::string& path, ListFormat format,
                                        const ParseOptions& options = {});

// Derives (label, distribution) from the 10 FERPlus vote counts; label -1 =
// dropped. The distribution is always filled (8 entries; all zero when there is
// no emotion vote).
int FerPlusLabel(const int votes[10], FerPlusLabelMode mode, std::vector<float>* distribution);

// Writes entries in REFERENCE format: `<split>_<path> <label>` per line, plus the
// distribution columns when `with_distribution` (our extension). Atomic.
absl::Status WriteLabelList(const std::string& path, const std::vector<LabelEntry>& entries,
                            bool with_distribution = false);
std::string FormatLabelList(const std::vector<LabelEntry>& entries, bool with_distribution);

// Per-class counts (labels -1 are ignored).
std::vector<int64_t> ClassCounts(const std::vector<LabelEntry>& entries, int num_classes);

// Symmetric label noise: exactly round(rate * n) entries with a label, chosen
// uniformly without replacement, get a different class drawn uniformly from the
// other num_classes - 1. Deterministic from `seed`. Distributions are left as
// they are (they describe the clean target). Returns the changed indices.
absl::StatusOr<std::vector<int64_t>> InjectSymmetricLabelNoise(std::vector<LabelEntry>* entries,
                                                               double rate, int num_classes,
                                                               uint64_t seed);

// Names: 8 FERPlus/AffectNet classes or the 7 RAF-DB classes (label order).
const std::vector<std::string>& FerPlusClassNames();
const std::vector<std::string>& RafDbClassNames();

}  // namespace dmue::datasets

#endif  // DATASETS_LABEL_LIST_H_
