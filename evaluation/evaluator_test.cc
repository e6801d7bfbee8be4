// End-to-end evaluator tests on a tiny synthetic LMDB and random checkpoints,
// and the bad inputs: missing keys, class-count mismatches, corrupt
// checkpoints, empty selections, bad or unusable devices; device "cpu"
// given explicitly evaluates exactly as the default.
#include "evaluation/evaluator.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <torch/cuda.h>

#include "datasets/image_codec.h"
#include "datasets/label_list.h"
#include "datasets/lmdb_dataset.h"
#include "datasets/synthetic_faces.h"
#include "dmue/model_bundle.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"
#include "dmue/train_step.h"
#include "evaluation/model_contract.h"
#include "evaluation/test_fixtures.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace dmue::evaluation {
namespace {

namespace fs = std::filesystem;
using testing::CheckpointWithSpec;
using testing::kClasses;
using testing::kVal;
using testing::MakeTinyData;
using testing::MakeTinyModels;
using testing::TinySpec;

DataSpec ValSpec(bool soft = false) {
  DataSpec spec;
  spec.lmdb = MakeTinyData().lmdb;
  spec.list = soft ? MakeTinyData().val_soft_list : MakeTinyData().val_list;
  spec.resize = 36;
  spec.crop = 32;
  spec.batch_size = 5;  // 12 examples: batches of 5, 5, 2
  spec.num_workers = 1;
  return spec;
}

CheckpointSpec Model(const std::string& path, int num_classes = 0) {
  CheckpointSpec spec;
  spec.checkpoint = path;
  spec.num_classes = num_classes;
  return spec;
}

EvaluatorOptions Quiet() {
  EvaluatorOptions options;
  options.progress = false;
  return options;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

TEST(EvaluatorTest, MetricsAgreeWithThePredictions) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  EXPECT_FALSE(classifier->info.multi_branch);
  EXPECT_EQ(classifier->info.num_classes, kClasses);
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_FALSE(data->has_distributions);
  std::vector<Prediction> predictions;
  auto report = Evaluate(*classifier, *data, Quiet(), &predictions);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(predictions.size(), size_t(kVal));
  EXPECT_EQ(report->num_examples, kVal);
  EXPECT_FALSE(report->votes.has_value());
  int correct = 0;
  double nll = 0;
  ConfusionMatrix confusion(kClasses);
  for (size_t i = 0; i < predictions.size(); ++i) {
    const Prediction& p = predictions[i];
    EXPECT_EQ(p.index, int64_t(i));  // in order, every example once
    EXPECT_EQ(p.label, int(i) % kClasses);
    double sum = 0;
    for (float v : p.probabilities) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    correct += p.predicted == p.label;
    nll -= std::log(p.probabilities[p.label]);
    ASSERT_TRUE(confusion.Add(p.label, p.predicted).ok());
  }
  EXPECT_EQ(report->confusion.counts(), confusion.counts());
  EXPECT_NEAR(report->summary.accuracy, double(correct) / kVal, 1e-12);
  EXPECT_NEAR(report->mean_nll, nll / kVal, 1e-5);
  EXPECT_EQ(report->calibration.count, kVal);
  EXPECT_GT(report->images_per_second, 0);

  // The logits are the model's on the eval transform of each image.
  auto image = ReadExampleImage(*data, 4);
  ASSERT_TRUE(image.ok());
  torch::Tensor x = torch::empty({1, 3, 32, 32});
  ASSERT_TRUE(datasets::ApplyTransform(*image, data->transform, nullptr, x.data_ptr<float>()).ok());
  torch::NoGradGuard no_grad;
  torch::Tensor probs = torch::softmax(classifier->model->forward(x), 1);
  for (int c = 0; c < kClasses; ++c) EXPECT_NEAR(probs[0][c].item<float>(), predictions[4].probabilities[c], 1e-5);
}

TEST(EvaluatorDeviceTest, ExplicitCpuEvaluatesExactlyAsTheDefault) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  std::vector<Prediction> by_default, on_cpu;
  auto a = Evaluate(*classifier, *data, Quiet(), &by_default);
  EvaluatorOptions cpu = Quiet();
  cpu.device = "cpu";
  auto b = Evaluate(*classifier, *data, cpu, &on_cpu);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->confusion.counts(), b->confusion.counts());
  EXPECT_EQ(a->mean_nll, b->mean_nll);
  ASSERT_EQ(by_default.size(), on_cpu.size());
  for (size_t i = 0; i < on_cpu.size(); ++i) EXPECT_EQ(by_default[i].probabilities, on_cpu[i].probabilities) << i;
}

TEST(EvaluatorDeviceTest, BadOrUnusableDevicesAreErrorsNotAborts) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  EvaluatorOptions options = Quiet();
  options.device = "cuda:x";
  auto bad = Evaluate(*classifier, *data, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("device: 'cuda:x'"), std::string::npos) << bad.status();
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  options.device = "cuda:0";
  auto cuda = Evaluate(*classifier, *data, options);
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition) << cuda.status();
  EXPECT_NE(cuda.status().message().find("device cuda:0: "), std::string::npos) << cuda.status();
}

TEST(EvaluatorTest, MultiBranchCheckpointEqualsItsInferenceExport) {
  auto multi = LoadClassifier(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(multi.ok()) << multi.status();
  EXPECT_TRUE(multi->info.multi_branch);
  auto single = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(single.ok());
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok());
  std::vector<Prediction> a, b;
  ASSERT_TRUE(Evaluate(*multi, *data, Quiet(), &a).ok());
  ASSERT_TRUE(Evaluate(*single, *data, Quiet(), &b).ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].probabilities, b[i].probabilities) << i;
}

// The compute options come from inference/: bf16 and AUTO (which keeps a
// candidate within 0.02 of fp32 on its probe inputs) stay near fp32 on the
// data too.
TEST(EvaluatorTest, Bf16AndAutoStayNearFp32) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  std::vector<Prediction> fp32, bf16, automatic;
  ASSERT_TRUE(Evaluate(*classifier, *data, Quiet(), &fp32).ok());
  EvaluatorOptions options = Quiet();
  options.precision = inference::PrecisionChoice::kBFloat16;
  ASSERT_TRUE(Evaluate(*classifier, *data, options, &bf16).ok());
  options.precision = inference::PrecisionChoice::kAuto;
  ASSERT_TRUE(Evaluate(*classifier, *data, options, &automatic).ok());
  ASSERT_EQ(bf16.size(), fp32.size());
  ASSERT_EQ(automatic.size(), fp32.size());
  for (size_t i = 0; i < fp32.size(); ++i) {
    for (int c = 0; c < kClasses; ++c) {
      EXPECT_NEAR(bf16[i].probabilities[c], fp32[i].probabilities[c], 0.05) << i;
      EXPECT_NEAR(automatic[i].probabilities[c], fp32[i].probabilities[c], 0.05) << i;
    }
  }
}

TEST(EvaluatorTest, FlipTtaAveragesImageAndMirror) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok());
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok());
  EvaluatorOptions options = Quiet();
  options.tta_flip = true;
  std::vector<Prediction> predictions;
  auto report = Evaluate(*classifier, *data, options, &predictions);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->tta_flip);
  auto image = ReadExampleImage(*data, 7);
  ASSERT_TRUE(image.ok());
  torch::Tensor x = torch::empty({1, 3, 32, 32});
  ASSERT_TRUE(datasets::ApplyTransform(*image, data->transform, nullptr, x.data_ptr<float>()).ok());
  torch::NoGradGuard no_grad;
  SetChannelsLast(*classifier->model, false);
  torch::Tensor expected = (torch::softmax(classifier->model->forward(x), 1) +
                            torch::softmax(classifier->model->forward(torch::flip(x, {3})), 1)) / 2;
  for (int c = 0; c < kClasses; ++c) {
    EXPECT_NEAR(expected[0][c].item<float>(), predictions[7].probabilities[c], 1e-5);
  }
}

TEST(EvaluatorTest, VoteDistributionMetrics) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok());
  auto data = OpenEvalData(ValSpec(/*soft=*/true), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(data->has_distributions);
  std::vector<Prediction> predictions;
  auto report = Evaluate(*classifier, *data, Quiet(), &predictions);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->votes.has_value());
  EXPECT_EQ(report->votes->count, kVal);
  VoteAccumulator expected;
  for (const Prediction& p : predictions) {
    const std::vector<float>& d = data->source->distribution(p.index);
    expected.Add(std::vector<double>(d.begin(), d.end()),
                 std::vector<double>(p.probabilities.begin(), p.probabilities.end()));
  }
  EXPECT_NEAR(report->votes->mean_kl, expected.Result().mean_kl, 1e-9);
  EXPECT_NEAR(report->votes->mean_js, expected.Result().mean_js, 1e-9);
  EXPECT_GT(report->votes->mean_js, 0);
  EXPECT_LE(report->votes->mean_js, std::log(2.0));
  EXPECT_NEAR(report->votes->top1_in_voted_rate, expected.Result().top1_in_voted_rate, 1e-12);
  EXPECT_NEAR(report->votes->majority_accuracy, expected.Result().majority_accuracy, 1e-12);
}

TEST(EvaluatorTest, WritesOutputs) {
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok());
  auto data = OpenEvalData(ValSpec(true), kClasses);
  ASSERT_TRUE(data.ok());
  std::vector<Prediction> predictions;
  auto report = Evaluate(*classifier, *data, Quiet(), &predictions);
  ASSERT_TRUE(report.ok());
  report->class_names = IndexClassNames(kClasses);
  const std::string dir = ::testing::TempDir() + "/evaluator_out";
  fs::remove_all(dir);
  ASSERT_TRUE(WriteEvaluationOutputs(*report, dir).ok());
  for (const char* name : {"report.json", "confusion.png", "confusion_counts.png", "reliability.png"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + name)) << name;
  }
  const std::string csv = PredictionsCsv(predictions, *data, report->class_names);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), kVal + 1);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "key,label,predicted,confidence,p_0,p_1,p_2");
  EXPECT_NE(csv.find("\nval_36.png,0,"), std::string::npos) << csv;
}

TEST(EvaluatorTest, FerPlusVoteCounts) {
  // A FERPlus label.csv (votes: neutral, happiness, surprise, sadness, anger,
  // disgust, fear, contempt, unknown, NF) over a tiny LMDB, an 8-class model.
  const std::string dir = ::testing::TempDir() + "/ferplus_tiny";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::vector<std::string> votes = {
      "10,0,0,0,0,0,0,0,0,0",  // neutral
      "0,6,4,0,0,0,0,0,0,0",   // happiness (6 of 10)
      "0,0,0,5,5,0,0,0,0,0",   // tie: dropped by the majority rule
      "1,0,0,0,0,0,0,0,9,0",   // unknown wins: dropped
      "0,0,0,0,0,2,7,1,0,0",   // fear
      "0,0,0,0,4,3,3,0,0,0",   // no majority: dropped
  };
  datasets::SyntheticFaceOptions face_options;
  face_options.size = 32;
  datasets::SyntheticFaceGenerator generator(face_options, 3);
  auto writer = datasets::LmdbWriter::Open(dir + "/lmdb", {});
  ASSERT_TRUE(writer.ok());
  std::string csv;
  for (size_t i = 0; i < votes.size(); ++i) {
    const std::string name = "fer000000" + std::to_string(i) + ".png";
    ASSERT_TRUE((*writer)->Put("valid_" + name, generator.Generate(int64_t(i)).image).ok());
    csv += name + ",\"(0, 0, 48, 48)\"," + votes[i] + "\n";
  }
  ASSERT_TRUE((*writer)->Finish(nullptr).ok());
  writer->reset();
  WriteFile(dir + "/label.csv", csv);
  torch::manual_seed(3);
  ModelConfig config;
  config.set_num_classes(8);
  DmueModel model(config);
  ASSERT_TRUE(ExportInferenceWeights(ModuleStateDict(*model), 8, dir + "/model.pth").ok());
  auto classifier = LoadClassifier(Model(dir + "/model.pth"));
  ASSERT_TRUE(classifier.ok()) << classifier.status();

  DataSpec spec;
  spec.lmdb = dir + "/lmdb";
  spec.list = dir + "/label.csv";
  spec.list_format = "ferplus";
  spec.split = "valid";
  spec.resize = 36;
  spec.crop = 32;
  spec.num_workers = 1;
  for (const char* mode : {"majority", "distribution"}) {
    spec.label_mode = mode;
    auto data = OpenEvalData(spec, 8);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_TRUE(data->has_distributions);
    std::vector<Prediction> predictions;
    auto report = Evaluate(*classifier, *data, Quiet(), &predictions);
    ASSERT_TRUE(report.ok()) << report.status();
    const int64_t expected_count = std::string(mode) == "majority" ? 3 : 6;
    EXPECT_EQ(report->num_examples, expected_count) << mode;
    ASSERT_TRUE(report->votes.has_value());
    EXPECT_EQ(report->votes->count, expected_count);
    VoteAccumulator expected;
    for (const Prediction& p : predictions) {
      const int row = std::stoi(data->keys[p.index].substr(std::string("valid_fer").size(), 7));
      std::vector<double> v;
      for (absl::string_view f : absl::StrSplit(votes[row], ',')) v.push_back(std::stod(std::string(f)));
      v.resize(8);  // the 8 emotions; unknown / NF are not classes
      expected.Add(v, std::vector<double>(p.probabilities.begin(), p.probabilities.end()));
    }
    EXPECT_NEAR(report->votes->mean_kl, expected.Result().mean_kl, 1e-6) << mode;
    EXPECT_NEAR(report->votes->top1_in_voted_rate, expected.Result().top1_in_voted_rate, 1e-12) << mode;
  }
  spec.label_mode = "majority";
  EXPECT_NE(OpenEvalData(spec, 7).status().message().find("FERPlus lists have 8 classes"), std::string::npos);
}

TEST(EvaluatorTest, ImageFolder) {
  const std::string root = ::testing::TempDir() + "/folder_data";
  fs::remove_all(root);
  auto data = OpenEvalData(ValSpec(), kClasses);
  ASSERT_TRUE(data.ok());
  const std::vector<std::string> classes = {"a_first", "b_second", "c_third"};
  for (int i = 0; i < kVal; ++i) {
    auto image = ReadExampleImage(*data, i);
    ASSERT_TRUE(image.ok());
    fs::create_directories(root + "/" + classes[i % kClasses]);
    ASSERT_TRUE(datasets::WriteImageFile(root + "/" + classes[i % kClasses] + "/" + std::to_string(i) + ".png",
                                         *image).ok());
  }
  DataSpec spec;
  spec.image_folder = root;
  spec.resize = 36;
  spec.crop = 32;
  spec.num_workers = 1;
  auto folder = OpenEvalData(spec, kClasses);
  ASSERT_TRUE(folder.ok()) << folder.status();
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference));
  ASSERT_TRUE(classifier.ok());
  std::vector<Prediction> from_folder, from_lmdb;
  auto report = Evaluate(*classifier, *folder, Quiet(), &from_folder);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(Evaluate(*classifier, *data, Quiet(), &from_lmdb).ok());
  EXPECT_EQ(report->num_examples, kVal);
  // Same images (PNG round trip is lossless), so the same confusion matrix.
  ConfusionMatrix lmdb_confusion(kClasses);
  for (const Prediction& p : from_lmdb) ASSERT_TRUE(lmdb_confusion.Add(p.label, p.predicted).ok());
  EXPECT_EQ(report->confusion.counts(), lmdb_confusion.counts());

  // A folder with the wrong number of classes names both counts.
  fs::remove_all(root + "/c_third");
  auto wrong = OpenEvalData(spec, kClasses);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("has 2 classes (a_first, b_second) but the checkpoint has 3"),
            std::string::npos)
      << wrong.status();
}

// The checkpoint with its spec, as evaluate_main loads it.
struct SpecRun {
  std::optional<SpecFile> spec;
  std::optional<LoadedClassifier> classifier;
  ModelContract contract;
};

SpecRun LoadWithSpec(const std::string& checkpoint) {
  SpecRun run;
  auto spec = FindModelSpec(checkpoint, "");
  EXPECT_TRUE(spec.ok() && spec->has_value()) << spec.status();
  run.spec = *spec;
  CheckpointSpec model = Model(checkpoint);
  model.spec = run.spec;
  auto classifier = LoadClassifier(model);
  EXPECT_TRUE(classifier.ok()) << classifier.status();
  run.classifier = *std::move(classifier);
  auto contract = ResolveContract(checkpoint, run.spec, {}, kClasses);
  EXPECT_TRUE(contract.ok()) << contract.status();
  run.contract = *contract;
  return run;
}

TEST(EvaluatorSpecTest, SpecBesideTheCheckpointSetsNamesAndTransform) {
  ModelSpec spec = TinySpec({"anger", "happiness", "contempt"});
  spec.mutable_input()->set_mean(0.4f);
  spec.mutable_input()->set_std(0.3f);
  spec.mutable_input()->set_grayscale(true);
  const std::string checkpoint = CheckpointWithSpec(MakeTinyModels().inference, "eval_with_spec", spec);
  SpecRun run = LoadWithSpec(checkpoint);
  ASSERT_TRUE(run.classifier.has_value());
  DataSpec lmdb = ValSpec();
  lmdb.resize = lmdb.crop = 0;  // from the spec
  lmdb.contract = run.contract.input;
  auto data = OpenEvalData(lmdb, kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->transform.resize, 36);
  EXPECT_EQ(data->transform.crop, 32);
  EXPECT_FLOAT_EQ(data->transform.mean, 0.4f);
  EXPECT_FLOAT_EQ(data->transform.std, 0.3f);
  EXPECT_TRUE(data->transform.grayscale);
  EXPECT_NE(data->description.find("36 -> 32, mean 0.4 std 0.3, grey"), std::string::npos) << data->description;

  // End to end over a folder named by the spec's classes. (Not over the raw
  // LMDB: datasets' grey conversion writes into its input, here LMDB's
  // read-only map.)
  const std::string root = ::testing::TempDir() + "/spec_folder";
  fs::remove_all(root);
  for (int i = 0; i < kVal; ++i) {
    auto image = ReadExampleImage(*data, i);
    ASSERT_TRUE(image.ok());
    const std::string name = run.contract.class_names[i % kClasses];
    fs::create_directories(root + "/" + name);
    ASSERT_TRUE(datasets::WriteImageFile(root + "/" + name + "/" + std::to_string(i) + ".png", *image).ok());
  }
  DataSpec folder;
  folder.image_folder = root;
  folder.folder_classes = run.contract.class_names;
  folder.contract = run.contract.input;
  folder.num_workers = 1;
  auto folder_data = OpenEvalData(folder, kClasses);
  ASSERT_TRUE(folder_data.ok()) << folder_data.status();
  std::vector<Prediction> predictions;
  auto report = Evaluate(*run.classifier, *folder_data, Quiet(), &predictions);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->num_examples, kVal);
  report->class_names = run.contract.class_names;
  report->model_spec = run.spec->path;
  const std::string json = ReportJson(*report);
  EXPECT_NE(json.find("\"class_names\": [\"anger\", \"happiness\", \"contempt\"]"), std::string::npos) << json;
  EXPECT_NE(json.find(SpecPathFor(checkpoint)), std::string::npos) << json;

  // The model saw grey faces normalised with the spec's mean and std.
  auto image = ReadExampleImage(*folder_data, 4);
  ASSERT_TRUE(image.ok());
  datasets::TransformOptions expected = datasets::EvalTransform(36, 32);
  expected.mean = 0.4f;
  expected.std = 0.3f;
  expected.grayscale = true;
  torch::Tensor x = torch::empty({1, 3, 32, 32});
  ASSERT_TRUE(datasets::ApplyTransform(*image, expected, nullptr, x.data_ptr<float>()).ok());
  EXPECT_TRUE(torch::equal(x[0][0], x[0][2]));
  torch::NoGradGuard no_grad;
  SetChannelsLast(*run.classifier->model, false);
  torch::Tensor probs = torch::softmax(run.classifier->model->forward(x), 1);
  for (int c = 0; c < kClasses; ++c) EXPECT_NEAR(probs[0][c].item<float>(), predictions[4].probabilities[c], 1e-5);
}

TEST(EvaluatorSpecTest, DisagreeingFlagsAndConfigsNameTheSpec) {
  const std::string checkpoint = CheckpointWithSpec(MakeTinyModels().inference, "eval_spec_flags", TinySpec());
  SpecRun run = LoadWithSpec(checkpoint);
  const std::string spec_path = SpecPathFor(checkpoint);
  DataSpec spec = ValSpec();  // --resize=36 --crop=32: agree with the spec
  spec.contract = run.contract.input;
  EXPECT_TRUE(OpenEvalData(spec, kClasses).ok());
  spec.crop = 28;
  auto crop = OpenEvalData(spec, kClasses);
  ASSERT_FALSE(crop.ok());
  EXPECT_NE(crop.status().message().find("--crop=28 disagrees with the model spec " + spec_path + " (input.crop 32)"),
            std::string::npos)
      << crop.status();

  // A DatasetConfig that sets another transform value names both files.
  const std::string config = ::testing::TempDir() + "/grey_config.pbtxt";
  WriteFile(config, "lmdb_path: \"" + MakeTinyData().lmdb + "\"\nlist_path: \"" + MakeTinyData().val_list +
                        "\"\nsplit: \"val\"\nnum_classes: 3\nresize: 36\ncrop: 32\ngrayscale: true\n");
  DataSpec from_config;
  from_config.data_config = config;
  from_config.contract = run.contract.input;
  auto grey = OpenEvalData(from_config, kClasses);
  ASSERT_FALSE(grey.ok());
  EXPECT_NE(grey.status().message().find(config + ": DatasetConfig.grayscale true disagrees with the model spec " +
                                         spec_path),
            std::string::npos)
      << grey.status();
}

TEST(EvaluatorSpecTest, ArchitectureMustAgreeWithTheCheckpoint) {
  const std::string& weights = MakeTinyModels().inference;
  ModelSpec four = TinySpec({"a", "b", "c", "d"});
  four.mutable_model()->set_num_classes(4);
  std::string checkpoint = CheckpointWithSpec(weights, "spec_four_classes", four);
  CheckpointSpec model = Model(checkpoint);
  model.spec = *FindModelSpec(checkpoint, "").value();
  auto classifier = LoadClassifier(model);
  ASSERT_FALSE(classifier.ok());
  EXPECT_NE(classifier.status().message().find(checkpoint + " has 3 classes"), std::string::npos)
      << classifier.status();
  EXPECT_NE(classifier.status().message().find(SpecPathFor(checkpoint) + " has model.num_classes 4"),
            std::string::npos)
      << classifier.status();

  ModelSpec ibn = TinySpec();
  ibn.mutable_model()->set_backbone(ModelConfig::RESNET50_IBN);
  checkpoint = CheckpointWithSpec(weights, "spec_ibn", ibn);
  model = Model(checkpoint);
  model.spec = *FindModelSpec(checkpoint, "").value();
  classifier = LoadClassifier(model);
  ASSERT_FALSE(classifier.ok());
  EXPECT_NE(classifier.status().message().find(checkpoint + " holds a RESNET18 backbone but its model spec " +
                                               SpecPathFor(checkpoint) + " says model.backbone RESNET50_IBN"),
            std::string::npos)
      << classifier.status();

  // Flags that restate the architecture must agree; --model_config is a second source.
  checkpoint = CheckpointWithSpec(weights, "spec_flags", TinySpec());
  model = Model(checkpoint);
  model.spec = *FindModelSpec(checkpoint, "").value();
  model.backbone = "resnet18";
  EXPECT_TRUE(LoadClassifier(model).ok());
  model.backbone = "resnet50_ibn";
  EXPECT_NE(LoadClassifier(model).status().message().find("--backbone=resnet50_ibn disagrees with the model spec"),
            std::string::npos);
  model.backbone = "auto";
  model.model_config = "other.pbtxt";
  EXPECT_NE(LoadClassifier(model).status().message().find("both give the architecture"), std::string::npos);
  model.model_config.clear();
  model.num_classes = 4;
  EXPECT_NE(LoadClassifier(model).status().message().find("--num_classes is 4"), std::string::npos);

  // A multi-branch snapshot with the inference spec loads with it too.
  CheckpointSpec multi = Model(MakeTinyModels().multi_branch);
  multi.spec = model.spec;
  EXPECT_TRUE(LoadMultiBranch(multi).ok());
}

TEST(EvaluatorBadInputTest, MissingKeyInTheDatabase) {
  const std::string list = ::testing::TempDir() + "/missing_key.txt";
  WriteFile(list, "val_36.png 0\nval_does_not_exist.png 1\n");
  DataSpec spec = ValSpec();
  spec.list = list;
  auto data = OpenEvalData(spec, kClasses);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("val_does_not_exist.png"), std::string::npos) << data.status();
  EXPECT_NE(data.status().message().find(MakeTinyData().lmdb), std::string::npos) << data.status();
}

TEST(EvaluatorBadInputTest, ClassCountMismatch) {
  // --num_classes that the checkpoint does not have.
  auto classifier = LoadClassifier(Model(MakeTinyModels().inference, 4));
  ASSERT_FALSE(classifier.ok());
  EXPECT_NE(classifier.status().message().find("has 3 classes"), std::string::npos) << classifier.status();
  EXPECT_NE(classifier.status().message().find("--num_classes is 4"), std::string::npos) << classifier.status();
  EXPECT_NE(classifier.status().message().find(MakeTinyModels().inference), std::string::npos);
  // Also for the multi-branch kind.
  auto multi = LoadMultiBranch(Model(MakeTinyModels().multi_branch, 8));
  ASSERT_FALSE(multi.ok());
  EXPECT_NE(multi.status().message().find("has 3 classes"), std::string::npos) << multi.status();

  // A DatasetConfig for another class count.
  const std::string config = ::testing::TempDir() + "/eight_classes.pbtxt";
  WriteFile(config, "lmdb_path: \"" + MakeTinyData().lmdb + "\"\nlist_path: \"" + MakeTinyData().val_list +
                        "\"\nsplit: \"val\"\nnum_classes: 8\n");
  DataSpec spec;
  spec.data_config = config;
  auto data = OpenEvalData(spec, kClasses);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("num_classes is 8 but the checkpoint has 3"), std::string::npos)
      << data.status();
  EXPECT_NE(data.status().message().find(config), std::string::npos);

  // Labels outside the model's classes name the list and the line.
  const std::string list = ::testing::TempDir() + "/label_too_big.txt";
  WriteFile(list, "val_36.png 0\nval_37.png 5\n");
  DataSpec bad = ValSpec();
  bad.list = list;
  auto labels = OpenEvalData(bad, kClasses);
  ASSERT_FALSE(labels.ok());
  EXPECT_NE(labels.status().message().find(list), std::string::npos) << labels.status();
}

TEST(EvaluatorBadInputTest, CorruptCheckpoint) {
  const std::string path = ::testing::TempDir() + "/corrupt.pth";
  std::ifstream in(MakeTinyModels().inference, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WriteFile(path, bytes.substr(0, bytes.size() / 2));  // truncated
  auto classifier = LoadClassifier(Model(path));
  ASSERT_FALSE(classifier.ok());
  EXPECT_NE(classifier.status().message().find(path), std::string::npos) << classifier.status();

  WriteFile(path, "this is not a checkpoint");
  classifier = LoadClassifier(Model(path));
  ASSERT_FALSE(classifier.ok());
  EXPECT_NE(classifier.status().message().find(path), std::string::npos) << classifier.status();

  auto missing = LoadClassifier(Model(::testing::TempDir() + "/no_such_file.pth"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_file.pth"), std::string::npos) << missing.status();
}

TEST(EvaluatorBadInputTest, WrongBackbone) {
  CheckpointSpec spec = Model(MakeTinyModels().inference);
  spec.backbone = "resnet50_ibn";
  auto classifier = LoadClassifier(spec);
  ASSERT_FALSE(classifier.ok());
  EXPECT_NE(classifier.status().message().find("does not fit the model (backbone RESNET50_IBN"), std::string::npos)
      << classifier.status();
  spec.backbone = "vgg";
  EXPECT_NE(LoadClassifier(spec).status().message().find("--backbone"), std::string::npos);
}

TEST(EvaluatorBadInputTest, EmptyDataset) {
  DataSpec spec = ValSpec();
  spec.split = "test";  // the list only has val_ entries
  auto data = OpenEvalData(spec, kClasses);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("no examples for split 'test'"), std::string::npos) << data.status();
  EXPECT_NE(data.status().message().find(MakeTinyData().val_list), std::string::npos) << data.status();

  const std::string empty = ::testing::TempDir() + "/empty.txt";
  WriteFile(empty, "");
  spec = ValSpec();
  spec.list = empty;
  data = OpenEvalData(spec, kClasses);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("no examples"), std::string::npos) << data.status();

  const std::string root = ::testing::TempDir() + "/empty_folder";
  fs::remove_all(root);
  for (const char* c : {"x", "y", "z"}) fs::create_directories(root + "/" + c);
  DataSpec folder;
  folder.image_folder = root;
  data = OpenEvalData(folder, kClasses);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("no examples"), std::string::npos) << data.status();
}

TEST(EvaluatorBadInputTest, DataSourceFlags) {
  DataSpec spec;
  EXPECT_NE(OpenEvalData(spec, kClasses).status().message().find("exactly one of"), std::string::npos);
  spec.lmdb = MakeTinyData().lmdb;
  EXPECT_NE(OpenEvalData(spec, kClasses).status().message().find("--lmdb and --list"), std::string::npos);
  spec.list = MakeTinyData().val_list;
  spec.list_format = "csv";
  EXPECT_NE(OpenEvalData(spec, kClasses).status().message().find("--list_format"), std::string::npos);
  spec.list_format = "ferplus";
  EXPECT_NE(OpenEvalData(spec, kClasses).status().message().find("FERPlus lists have 8 classes"), std::string::npos);
}

}  // namespace
}  // namespace dmue::evaluation
