#include "training/descriptor_distill.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "datasets/dataset_config.h"
#include "datasets/testing/synthetic_lmdb.h"
#include "dmue/config/text_proto.h"
#include "dmue/dmue_model.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"
#include "gtest/gtest.h"
#include "training/pretrainer.h"

namespace dmue::training {
namespace {

// TEST_TMPDIR is shared by concurrent runs (--runs_per_test): a random folder.
std::string UniqueTempDir() {
  static const std::string dir = ::testing::TempDir() + "/distill" + std::to_string(std::random_device{}());
  return dir;
}

// A teacher stand-in: 4x4 average pooling of the 0..1 image, less its mean
// (so that no direction is common to all faces), then a fixed random
// projection to 16 dimensions. Learnable from the student's view, and not
// mirror-symmetric. Counts its calls; fails from call `fail_from` on.
class FakeTeacher : public DescriptorTeacher {
 public:
  static constexpr int kSide = 40;
  static constexpr int kDims = 16;
  explicit FakeTeacher(int fail_from = -1) : fail_from_(fail_from) {
    torch::manual_seed(7);
    projection_ = torch::randn({3 * 4 * 4, kDims});
  }
  int input_side() const override { return kSide; }
  int descriptor_size() const override { return kDims; }
  std::string fingerprint() const override { return "fake"; }
  absl::StatusOr<at::Tensor> Describe(const at::Tensor& images) const override {
    if (fail_from_ >= 0 && calls_ >= fail_from_) return absl::UnavailableError("fake teacher down");
    ++calls_;
    EXPECT_EQ(images.sizes(), (std::vector<int64_t>{images.size(0), 3, kSide, kSide}));
    EXPECT_LE(images.max().item<float>(), 255.5f);
    const at::Tensor pooled = torch::adaptive_avg_pool2d(images / 255, {4, 4}).flatten(1);
    return (pooled - pooled.mean(1, /*keepdim=*/true)).matmul(projection_);
  }
  int calls() const { return calls_; }

 private:
  int fail_from_;
  mutable std::atomic<int> calls_{0};
  at::Tensor projection_;
};

struct Data {
  std::string lmdb, list;
};

// 48 synthetic 32x32 faces (3 classes; labels are not used).
const Data& SyntheticFaces() {
  static const Data* data = [] {
    const std::string dir = UniqueTempDir() + "/faces";
    EXPECT_TRUE(datasets::testing::WriteSyntheticLmdb(dir, 3, 32, {{"train", 48}}, 5).ok());
    return new Data{dir + "/lmdb", dir + "/train.txt"};
  }();
  return *data;
}

datasets::DatasetConfig DataConfig(const std::string& list) {
  datasets::DatasetConfig d;
  d.set_lmdb_path(SyntheticFaces().lmdb);
  d.set_list_path(list);
  d.set_num_classes(3);
  d.set_resize(32);  // the whole face, as the teacher sees it
  d.set_crop(32);
  d.set_grayscale(true);
  d.mutable_augmentation()->set_erasing_p(0);
  d.mutable_augmentation()->set_gaussian_noise_p(0);
  d.set_batch_size(8);
  d.set_num_workers(1);
  d.set_sampler(datasets::DatasetConfig::SHUFFLED);
  return d;
}

std::shared_ptr<datasets::LmdbSource> OpenFaces(const std::string& list) {
  absl::StatusOr<std::shared_ptr<datasets::LmdbSource>> source = datasets::OpenSource(DataConfig(list));
  EXPECT_TRUE(source.ok()) << source.status();
  return source.ok() ? *source : nullptr;
}

TeacherCacheOptions CacheOptions(const std::string& name) {
  TeacherCacheOptions options;
  options.path = UniqueTempDir() + "/" + name;
  options.grayscale = true;
  options.batch_size = 10;  // 48 images: 5 calls, the last one of 8
  options.save_seconds = 0;
  return options;
}

TEST(TeacherCacheTest, HoldsEachImageAndItsMirrorAndIsReused) {
  const auto source = OpenFaces(SyntheticFaces().list);
  ASSERT_NE(source, nullptr);
  const FakeTeacher teacher;
  const TeacherCacheOptions options = CacheOptions("reused.bin");
  absl::StatusOr<at::Tensor> cache = BuildTeacherCache(*source, teacher, options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(teacher.calls(), 5);
  ASSERT_EQ(cache->sizes(), (std::vector<int64_t>{48, 2, FakeTeacher::kDims}));

  // Image 13 as the teacher sees it, and its mirror.
  auto context = source->NewContext();
  ASSERT_TRUE(context.ok());
  cv::Mat rgb;
  ASSERT_TRUE(source->Read(13, context->get(), &rgb).ok());
  at::Tensor input = torch::empty({1, 3, FakeTeacher::kSide, FakeTeacher::kSide});
  ASSERT_TRUE(datasets::ApplyTransform(rgb, TeacherTransform(FakeTeacher::kSide, true), nullptr,
                                       input.data_ptr<float>()).ok());
  EXPECT_TRUE(torch::equal(input[0][0], input[0][2]));  // grey replicated
  const at::Tensor plain = *teacher.Describe(input), mirrored = *teacher.Describe(input.flip({3}));
  EXPECT_TRUE(torch::allclose((*cache)[13][0], plain[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose((*cache)[13][1], mirrored[0], 1e-5, 1e-6));
  EXPECT_GT(((*cache)[13][0] - (*cache)[13][1]).abs().max().item<float>(), 1e-3);

  const FakeTeacher second;
  absl::StatusOr<at::Tensor> again = BuildTeacherCache(*source, second, options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(second.calls(), 0);
  EXPECT_TRUE(torch::equal(*again, *cache));
}

TEST(TeacherCacheTest, ResumesWhereAnInterruptedRunStopped) {
  const auto source = OpenFaces(SyntheticFaces().list);
  ASSERT_NE(source, nullptr);
  const TeacherCacheOptions options = CacheOptions("resumed.bin");
  const FakeTeacher failing(/*fail_from=*/2);
  const absl::Status status = BuildTeacherCache(*source, failing, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("teacher on images 20..29: fake teacher down"), std::string::npos) << status;

  const FakeTeacher teacher;
  absl::StatusOr<at::Tensor> resumed = BuildTeacherCache(*source, teacher, options);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(teacher.calls(), 3);  // images 20..47
  absl::StatusOr<at::Tensor> whole = BuildTeacherCache(*source, FakeTeacher(), CacheOptions("whole.bin"));
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(torch::allclose(*resumed, *whole, 1e-5, 1e-6));
}

// Builds the cache of `options` from the images of `lines` (a list written to
// a fresh file named `name`); `status` is the build's outcome.
void BuildCacheFromList(const std::vector<std::string>& lines, const std::string& name,
                        const TeacherCacheOptions& options, absl::Status* status) {
  const std::string list = UniqueTempDir() + "/" + name;
  std::ofstream(list) << absl::StrJoin(lines, "\n") << "\n";
  const auto source = OpenFaces(list);
  ASSERT_NE(source, nullptr);
  *status = BuildTeacherCache(*source, FakeTeacher(), options).status();
}

TEST(TeacherCacheTest, RefusesAnotherImageListTeacherOrInput) {
  const auto source = OpenFaces(SyntheticFaces().list);
  ASSERT_NE(source, nullptr);
  const TeacherCacheOptions options = CacheOptions("refused.bin");
  ASSERT_TRUE(BuildTeacherCache(*source, FakeTeacher(), options).ok());

  // The same images, two lines swapped: same count, another list.
  std::ifstream in(SyntheticFaces().list);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 48u);
  std::swap(lines[0], lines[1]);
  absl::Status status;
  ASSERT_NO_FATAL_FAILURE(BuildCacheFromList(lines, "swapped.txt", options, &status));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(options.path + ": the teacher cache was made for an image list with hash"),
            std::string::npos) << status;

  lines.pop_back();
  ASSERT_NO_FATAL_FAILURE(BuildCacheFromList(lines, "shorter.txt", options, &status));
  EXPECT_NE(status.message().find("made for an image count of 48, this run has 47"), std::string::npos) << status;

  lines.resize(4);  // a list much shorter than the cache
  ASSERT_NO_FATAL_FAILURE(BuildCacheFromList(lines, "four_of_48.txt", options, &status));
  EXPECT_NE(status.message().find("made for an image count of 48, this run has 4"), std::string::npos) << status;

  TeacherCacheOptions colour = options;
  colour.grayscale = false;
  status = BuildTeacherCache(*source, FakeTeacher(), colour).status();
  EXPECT_NE(status.message().find("made for a teacher/input fingerprint"), std::string::npos) << status;

  std::ofstream(options.path) << "garbage";
  status = BuildTeacherCache(*source, FakeTeacher(), options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
}

// The target follows the student's view: the mirror's descriptor exactly
// when the image is mirrored; the draws repeat for the same batch.
TEST(DistillationTest, MirroredImagesGetTheMirrorsDescriptor) {
  datasets::Batch batch;
  batch.images = torch::rand({16, 3, 5, 7});
  batch.indices = {9, 2, 4, 4, 0, 1, 3, 5, 6, 7, 8, 9, 2, 1, 0, 3};
  batch.epoch = 3;
  batch.batch_index = 11;
  const at::Tensor descriptors = torch::randn({10, 2, 6});
  const StudentBatch out = MirrorWithTargets(batch, descriptors, 0.5, 42);
  int mirrored = 0;
  for (int i = 0; i < 16; ++i) {
    const bool flipped = torch::equal(out.images[i], batch.images[i].flip({2}));
    EXPECT_TRUE(flipped || torch::equal(out.images[i], batch.images[i])) << i;
    EXPECT_TRUE(torch::equal(out.targets[i], descriptors[batch.indices[i]][flipped ? 1 : 0])) << i;
    mirrored += flipped;
  }
  EXPECT_GT(mirrored, 0);
  EXPECT_LT(mirrored, 16);
  EXPECT_TRUE(torch::equal(MirrorWithTargets(batch, descriptors, 0.5, 42).images, out.images));
  EXPECT_TRUE(torch::equal(MirrorWithTargets(batch, descriptors, 0, 42).targets,
                           descriptors.index({torch::tensor(batch.indices), 0})));
  EXPECT_TRUE(torch::equal(MirrorWithTargets(batch, descriptors, 1, 42).images, batch.images.flip({3})));
}

PretrainConfig DistillConfig(const std::string& name) {
  PretrainConfig config;
  config.set_objective(PretrainConfig::DESCRIPTOR_DISTILLATION);
  *config.mutable_data() = DataConfig(SyntheticFaces().list);
  config.set_lr(0.05);
  config.set_epochs(6);  // 6 batches an epoch
  config.add_milestones(100);
  config.set_log_every_batches(6);
  config.set_num_threads(1);
  config.set_teacher_batch_size(16);
  config.set_output_dir(UniqueTempDir() + "/" + name);
  return config;
}

TEST(DistillationTest, LowersTheLossLoadsIntoDmueAndResumes) {
  PretrainConfig config = DistillConfig("run");
  const FakeTeacher teacher;
  absl::StatusOr<PretrainSummary> summary = RunPretraining(config, &teacher);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->steps, 36);
  EXPECT_EQ(teacher.calls(), 3);  // the cache: 48 images in 16s
  EXPECT_LT(summary->last_loss, 0.6 * summary->first_loss) << summary->first_loss << " -> " << summary->last_loss;
  // Well below the best constant answer (the mean direction): the student
  // tells the faces apart.
  absl::StatusOr<at::Tensor> targets =
      BuildTeacherCache(*OpenFaces(SyntheticFaces().list), teacher, CacheOptions("constant.bin"));
  ASSERT_TRUE(targets.ok()) << targets.status();
  const at::Tensor all = targets->flatten(0, 1);
  const at::Tensor mean = torch::nn::functional::normalize(all, {}).mean(0, /*keepdim=*/true).expand_as(all);
  const double constant = DescriptorLoss(mean, all).item<double>();
  EXPECT_LT(summary->last_loss, 0.75 * constant) << "constant answer: " << constant;
  ASSERT_EQ(summary->last_checkpoint, config.output_dir() + "/mv_epoch_5.pt");

  ModelConfig dmue_config;
  dmue_config.set_num_classes(3);
  DmueModel model(dmue_config);
  ASSERT_TRUE(LoadMsraPretrained(summary->last_checkpoint, model).ok());
  absl::StatusOr<StateDict> weights = ReadWeights(summary->last_checkpoint);
  ASSERT_TRUE(weights.ok()) << weights.status();
  std::map<std::string, torch::Tensor> pre(weights->begin(), weights->end());
  EXPECT_EQ(pre.count("fc.weight"), 1u);
  EXPECT_EQ(pre["fc.weight"].sizes(), (std::vector<int64_t>{FakeTeacher::kDims, 512}));
  const StateDict state = ModuleStateDict(*model);
  std::map<std::string, torch::Tensor> ours(state.begin(), state.end());
  EXPECT_TRUE(torch::equal(ours["base.conv1.weight"], pre["feat_net.conv1.weight"]));
  EXPECT_TRUE(torch::equal(ours["base.layer4_3.1.conv2.weight"], pre["feat_net.layer4.1.conv2.weight"]));

  // Two more epochs continue from mv_epoch_5, with the cached descriptors.
  config.set_epochs(8);
  const FakeTeacher unused;
  absl::StatusOr<PretrainSummary> more = RunPretraining(config, &unused);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->steps, 12);
  EXPECT_EQ(unused.calls(), 0);
  EXPECT_LT(more->last_loss, summary->first_loss);
  EXPECT_EQ(more->last_checkpoint, config.output_dir() + "/mv_epoch_7.pt");
}

TEST(DistillationTest, ConfigErrorsNameTheField) {
  PretrainConfig config = DistillConfig("errors");
  ASSERT_TRUE(ValidatePretrainConfig(config).ok()) << ValidatePretrainConfig(config);
  const auto expect_error = [](const PretrainConfig& c, absl::string_view text) {
    const absl::Status status = ValidatePretrainConfig(c);
    EXPECT_NE(status.message().find(text), std::string::npos) << status;
  };
  PretrainConfig bad = config;
  bad.set_objective(PretrainConfig::OBJECTIVE_UNSPECIFIED);
  expect_error(bad, "PretrainConfig.objective: must be MV_SOFTMAX or DESCRIPTOR_DISTILLATION");
  bad = config;
  bad.set_teacher_batch_size(0);
  expect_error(bad, "PretrainConfig.teacher_batch_size: must be > 0");
  bad = config;
  bad.set_teacher_cache_save_seconds(-1);
  expect_error(bad, "PretrainConfig.teacher_cache_save_seconds: must be >= 0");
  bad = config;
  bad.set_objective(PretrainConfig::MV_SOFTMAX);
  bad.set_num_identities(3);
  bad.set_teacher_dir("/somewhere");
  expect_error(bad, "PretrainConfig.teacher_dir: is only used with objective DESCRIPTOR_DISTILLATION");

  bad = config;
  bad.set_teacher_dir(UniqueTempDir() + "/no_face_api");
  const absl::Status status = RunPretraining(bad).status();
  EXPECT_NE(status.message().find("PretrainConfig.teacher_dir: "), std::string::npos) << status;
  EXPECT_NE(status.message().find("no_face_api"), std::string::npos) << status;
  EXPECT_FALSE(RunPretraining(config, nullptr).ok());
}

// face-api's net behind the teacher interface, on 4 faces; skipped without
// its weights (tools/setup.sh).
TEST(TeacherCacheTest, FaceApiTeacherDescribesFacesAndMirrors) {
  absl::StatusOr<std::unique_ptr<DescriptorTeacher>> teacher = LoadFaceApiTeacher("");
  if (!teacher.ok()) GTEST_SKIP() << teacher.status() << " -- run tools/setup.sh or set DMUE_FACE_API_DIR";
  EXPECT_EQ((*teacher)->input_side(), 150);
  std::ifstream in(SyntheticFaces().list);
  std::string lines;
  std::string line;
  for (int i = 0; i < 4 && std::getline(in, line); ++i) lines += line + "\n";
  const std::string four = UniqueTempDir() + "/four.txt";
  std::ofstream(four) << lines;
  const auto source = OpenFaces(four);
  ASSERT_NE(source, nullptr);
  TeacherCacheOptions options = CacheOptions("face_api.bin");
  options.batch_size = 4;
  absl::StatusOr<at::Tensor> cache = BuildTeacherCache(*source, **teacher, options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_EQ(cache->sizes(), (std::vector<int64_t>{4, 2, 128}));
  EXPECT_TRUE(torch::isfinite(*cache).all().item<bool>());
  EXPECT_GT(((*cache)[0][0] - (*cache)[0][1]).norm().item<float>(), 1e-4);  // the mirror is another input
  EXPECT_GT(((*cache)[0][0] - (*cache)[1][0]).norm().item<float>(), 1e-4);
}

// training/configs/*_distill.pbtxt are PretrainConfigs (trainer_config_test
// checks the others as TrainerConfigs).
TEST(DistillationTest, ShippedConfigsAreValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator("training/configs")) {
    if (!absl::EndsWith(entry.path().filename().string(), "_distill.pbtxt")) continue;
    absl::StatusOr<PretrainConfig> config = LoadTextProto<PretrainConfig>(entry.path().string());
    ASSERT_TRUE(config.ok()) << entry.path() << ": " << config.status();
    EXPECT_TRUE(ValidatePretrainConfig(*config).ok()) << entry.path() << ": " << ValidatePretrainConfig(*config);
    EXPECT_EQ(config->objective(), PretrainConfig::DESCRIPTOR_DISTILLATION) << entry.path();
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace dmue::training
