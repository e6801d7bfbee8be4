#include "evaluation/test_fixtures.h"

#include <random>

#include <filesystem>

#include <glog/logging.h>
#include <torch/torch.h>

#include "datasets/label_list.h"
#include "datasets/lmdb_dataset.h"
#include "datasets/synthetic_faces.h"
#include "dmue/dmue_model.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/model_bundle.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"
#include "gtest/gtest.h"

namespace dmue::evaluation::testing {
namespace {

// TEST_TMPDIR is shared by concurrent runs of a test (--runs_per_test) and
// pids repeat inside the sandbox's PID namespace: use a random folder.
std::string UniqueTempDir() {
  static const std::string dir = ::testing::TempDir() + "/run" + std::to_string(std::random_device{}());
  return dir;
}

namespace fs = std::filesystem;

std::string WriteModel(const std::string& dir, uint64_t seed, std::string* inference) {
  torch::manual_seed(seed);
  ModelConfig config;
  config.set_num_classes(kClasses);
  DmueModel model(config);
  // Non-trivial BN statistics so that eval mode differs from train mode.
  for (auto& buffer : model->named_buffers()) {
    if (buffer.key().find("running_var") != std::string::npos) buffer.value().uniform_(0.5, 1.5);
    if (buffer.key().find("running_mean") != std::string::npos) buffer.value().uniform_(-0.1, 0.1);
  }
  {
    // Larger classifier weights than the N(0, 0.001) init, so predictions vary.
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().rfind("classifiers.", 0) == 0) p.value().normal_(0.0, 0.05);
    }
  }
  const std::string path = dir + "/multi_seed" + std::to_string(seed) + ".pth";
  CHECK(io::WriteStateDict(path, ModuleStateDictForSaving(*model)).ok());
  *inference = dir + "/inference_seed" + std::to_string(seed) + ".pth";
  CHECK(ExportInferenceWeights(ModuleStateDict(*model), kClasses, *inference).ok());
  return path;
}

}  // namespace

const TinyData& MakeTinyData() {
  static TinyData* data = [] {
    auto* d = new TinyData;
    d->dir = UniqueTempDir() + "/evaluation_tiny_data";
    fs::remove_all(d->dir);
    fs::create_directories(d->dir);
    d->lmdb = d->dir + "/lmdb";
    datasets::SyntheticFaceOptions options;
    options.size = 32;
    options.num_classes = kClasses;
    options.mixture_rate = 0.5f;
    options.label_from_argmax = true;
    datasets::SyntheticFaceGenerator generator(options, /*seed=*/7);
    auto writer = datasets::LmdbWriter::Open(d->lmdb, {});
    CHECK(writer.ok()) << writer.status();
    std::vector<datasets::LabelEntry> train, val;
    for (int i = 0; i < kTrain + kVal; ++i) {
      datasets::SyntheticFace face = generator.Generate(i);
      datasets::LabelEntry entry;
      entry.split = i < kTrain ? "train" : "val";
      entry.path = std::to_string(i) + ".png";
      entry.label = i % kClasses;  // balanced whatever the mixtures
      entry.distribution = face.distribution;
      CHECK((*writer)->Put(datasets::LmdbKey(entry), face.image).ok());
      (i < kTrain ? train : val).push_back(entry);
    }
    std::vector<datasets::LabelEntry> all = train;
    all.insert(all.end(), val.begin(), val.end());
    CHECK((*writer)->Finish(&all).ok());
    d->train_list = d->dir + "/train.txt";
    d->train_soft_list = d->dir + "/train_soft.txt";
    d->val_list = d->dir + "/val.txt";
    d->val_soft_list = d->dir + "/val_soft.txt";
    CHECK(datasets::WriteLabelList(d->train_list, train).ok());
    CHECK(datasets::WriteLabelList(d->train_soft_list, train, true).ok());
    CHECK(datasets::WriteLabelList(d->val_list, val).ok());
    CHECK(datasets::WriteLabelList(d->val_soft_list, val, true).ok());
    return d;
  }();
  return *data;
}

const TinyModels& MakeTinyModels() {
  static TinyModels* models = [] {
    auto* m = new TinyModels;
    const std::string dir = UniqueTempDir() + "/evaluation_tiny_models";
    fs::remove_all(dir);
    fs::create_directories(dir);
    m->multi_branch = WriteModel(dir, 1, &m->inference);
    WriteModel(dir, 2, &m->baseline);
    return m;
  }();
  return *models;
}

dmue::ModelSpec TinySpec(const std::vector<std::string>& names) {
  dmue::ModelSpec spec;
  spec.mutable_model()->set_num_classes(kClasses);
  for (const std::string& name : names) spec.add_class_names(name);
  spec.mutable_input()->set_face_crop(dmue::InputSpec::NONE);
  spec.mutable_input()->set_resize(36);
  spec.mutable_input()->set_crop(32);
  return spec;
}

std::string CheckpointWithSpec(const std::string& weights, const std::string& dir, const dmue::ModelSpec& spec) {
  const std::string folder = UniqueTempDir() + "/" + dir;
  fs::remove_all(folder);
  fs::create_directories(folder);
  const std::string copy = folder + "/" + fs::path(weights).filename().string();
  fs::copy_file(weights, copy);
  CHECK(WriteModelSpec(SpecPathFor(copy), spec).ok());
  return copy;
}

}  // namespace dmue::evaluation::testing
