// Test fixtures: a tiny synthetic LMDB (3 classes, 32x32 faces, half of them
// mixtures with known label distributions) with label lists, and randomly
// initialised checkpoints (multi-branch snapshot, its inference export, and a
// differently seeded inference model as a baseline). Made once per process
// under the test's temporary directory.
#ifndef EVALUATION_TEST_FIXTURES_H_
#define EVALUATION_TEST_FIXTURES_H_

#include <string>
#include <vector>

#include "dmue/model_spec.pb.h"

namespace dmue::evaluation::testing {

inline constexpr int kClasses = 3;
inline constexpr int kTrain = 36;  // 12 per class
inline constexpr int kVal = 12;

struct TinyData {
  std::string dir;
  std::string lmdb;
  std::string train_list;       // REFERENCE, hard labels
  std::string train_soft_list;  // REFERENCE + distribution columns
  std::string val_list;
  std::string val_soft_list;
};
const TinyData& MakeTinyData();

struct TinyModels {
  std::string multi_branch;  // DMUE state dict (io::WriteStateDict)
  std::string inference;     // ExportInferenceWeights of the same model
  std::string baseline;      // another (seed 2) inference model
};
const TinyModels& MakeTinyModels();

// A valid ModelSpec of the tiny models (ResNet-18, kClasses classes) with
// `names`, the tiny data's geometry (resize 36, crop 32) and face crops.
dmue::ModelSpec TinySpec(const std::vector<std::string>& names = {"anger", "joy", "calm"});

// Copies `weights` into a fresh folder `dir` (so the spec beside it is the
// test's own) and writes `spec` beside the copy; returns the copy's path.
std::string CheckpointWithSpec(const std::string& weights, const std::string& dir, const dmue::ModelSpec& spec);

}  // namespace dmue::evaluation::testing

#endif  // EVALUATION_TEST_FIXTURES_H_
