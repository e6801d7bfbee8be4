#include "datasets/testing/synthetic_lmdb.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "datasets/label_list.h"
#include "datasets/lmdb_dataset.h"
#include "datasets/synthetic_faces.h"

namespace dmue::datasets::testing {

absl::Status WriteSyntheticLmdb(const std::string& dir, int num_classes, int size,
                                const std::vector<SplitSize>& splits, uint64_t seed) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  SyntheticFaceOptions options;
  options.size = size;
  options.num_classes = num_classes;
  if (absl::Status s = ValidateSyntheticFaceOptions(options); !s.ok()) return s;
  SyntheticFaceGenerator generator(options, seed);
  auto writer = LmdbWriter::Open(dir + "/lmdb", {});
  if (!writer.ok()) return writer.status();
  std::vector<LabelEntry> all;
  int64_t index = 0;
  for (const SplitSize& split : splits) {
    std::vector<LabelEntry> entries;
    for (int i = 0; i < split.count; ++i, ++index) {
      SyntheticFace face = generator.Generate(index);
      LabelEntry entry;
      entry.split = split.split;
      entry.path = absl::StrCat(i, ".png");
      entry.label = face.label;
      if (absl::Status s = (*writer)->Put(LmdbKey(entry), face.image); !s.ok()) return s;
      entries.push_back(entry);
    }
    if (absl::Status s = WriteLabelList(absl::StrCat(dir, "/", split.split, ".txt"), entries); !s.ok()) return s;
    all.insert(all.end(), entries.begin(), entries.end());
  }
  return (*writer)->Finish(&all);
}

}  // namespace dmue::datasets::testing
