// Test helper: a tiny LMDB of synthetic faces with reference-format label
// lists, for end-to-end tests of the trainer, pretraining and evaluation.
#ifndef DATASETS_TESTING_SYNTHETIC_LMDB_H_
#define DATASETS_TESTING_SYNTHETIC_LMDB_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace dmue::datasets::testing {

struct SplitSize {
  std::string split;  // e.g. "train"; the list is written to <dir>/<split>.txt
  int count = 0;
};

// Writes <dir>/lmdb (PNG records keyed "<split>_<i>.png") and one list per
// split; images cycle through the classes, so every prefix is balanced.
absl::Status WriteSyntheticLmdb(const std::string& dir, int num_classes, int size,
                                const std::vector<SplitSize>& splits, uint64_t seed = 1);

}  // namespace dmue::datasets::testing

#endif  // DATASETS_TESTING_SYNTHETIC_LMDB_H_
