#include "datasets/testing/synthetic_lmdb.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "datasets/label_list.h"
#include "datasets/lmdb_dataset.h"
#include "datasets/synthetic_faces.h"
#include "dmue/base/status_macros.h"

namespace dmue::datasets::testing {

absl::Status WriteSyntheticLmdb(const std::string& dir, int num_classes, int size,
                                const std::vector<SplitSize>& splits, uint64_t seed) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  SyntheticFaceOptions options;
  options.size = size;
  options.num_classes = num_classes;
  RETURN_IF_ERROR(ValidateSyntheticFaceOptions(options));
  SyntheticFaceGenerator generator(options, seed);
  ASSIGN_OR_RETURN(std::unique_ptr<LmdbWriter> writer, LmdbWriter::Open(dir + "/lmdb", {}));
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
      RETURN_IF_ERROR(writer->Put(LmdbKey(entry), face.image));
      entries.push_back(entry);
    }
    RETURN_IF_ERROR(WriteLabelList(absl::StrCat(dir, "/", split.split, ".txt"), entries));
    all.insert(all.end(), entries.begin(), entries.end());
  }
  return writer->Finish(&all);
}

}  // namespace dmue::datasets::testing
