#include "dmue/face_descriptor_net.h"

#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "dmue/io/tfjs_weights.h"
#include "dmue/testing/face_inputs.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

using testing::FaceInput;

// Every weight the net reads, with random values of about the real scale.
io::TfjsWeights RandomWeights(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<io::TfjsWeight> weights;
  for (const auto& [name, shape] : FaceDescriptorNet::WeightShapes()) {
    io::TfjsWeight w;
    w.name = name;
    w.shape = shape;
    const bool scale = name.find("scale/weights") != std::string::npos;
    const at::Tensor values = scale ? 1 + 0.1 * torch::rand(shape) : 0.05 * torch::randn(shape);
    w.floats.assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
    weights.push_back(std::move(w));
  }
  return io::TfjsWeights(std::move(weights));
}

// max |a - b| / max |b|.
double MaxRelativeDiff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

// [N, 3, 150, 150] uint8 from RGB images.
at::Tensor Batch(const std::vector<cv::Mat>& images) {
  std::vector<at::Tensor> items;
  for (const cv::Mat& rgb : images) {
    items.push_back(torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).permute({2, 0, 1}).clone());
  }
  return torch::stack(items);
}

TEST(FaceDescriptorNetTest, RefusesMissingAndMisshapenWeights) {
  io::TfjsWeights all = RandomWeights(1);
  std::vector<io::TfjsWeight> fewer = all.weights();
  fewer.erase(fewer.begin() + 20);
  const absl::Status missing = FaceDescriptorNet::FromWeights(io::TfjsWeights(fewer), "m.json").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_NE(missing.message().find(absl::StrCat("m.json: no weight '", all.weights()[20].name)), std::string::npos)
      << missing;

  std::vector<io::TfjsWeight> bad = all.weights();
  bad.back().shape = {128, 256};  // fc transposed.
  const absl::Status shape = FaceDescriptorNet::FromWeights(io::TfjsWeights(bad), "m.json").status();
  EXPECT_NE(shape.message().find("weight 'fc' is float32 [128, 256], expected float32 [256, 128]"), std::string::npos)
      << shape;
}

TEST(FaceDescriptorNetTest, RefusesBadImages) {
  absl::StatusOr<FaceDescriptorNet> net = FaceDescriptorNet::FromWeights(RandomWeights(2), "random");
  ASSERT_TRUE(net.ok()) << net.status();
  for (const at::Tensor& bad : {torch::zeros({1, 150, 150, 3}), torch::zeros({1, 3, 112, 112}),
                                torch::zeros({3, 150, 150}), torch::zeros({1, 3, 150, 150}, torch::kInt32), at::Tensor()}) {
    const absl::Status status = net->Descriptor(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find("FaceDescriptorNet: images must be"), std::string::npos) << status;
  }
}

TEST(FaceDescriptorNetTest, BatchesAndInputTypesAgree) {
  absl::StatusOr<FaceDescriptorNet> net = FaceDescriptorNet::FromWeights(RandomWeights(3), "random");
  ASSERT_TRUE(net.ok()) << net.status();
  const std::vector<FaceInput> inputs = testing::SyntheticFaceInputs();
  const at::Tensor batch = Batch({inputs[0].rgb, inputs[1].rgb});
  absl::StatusOr<at::Tensor> both = net->Descriptor(batch);
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_EQ(both->sizes(), (std::vector<int64_t>{2, 128}));
  EXPECT_GT(both->abs().max().item<float>(), 0.f);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<at::Tensor> one = net->Descriptor(batch.slice(0, i, i + 1).to(torch::kFloat64));
    ASSERT_TRUE(one.ok()) << one.status();
    // Batch size may change oneDNN's algorithm, hence not bit-equal.
    EXPECT_LT(MaxRelativeDiff(one->squeeze(0), (*both)[i]), 1e-5) << "item " << i;
  }
  EXPECT_GT(MaxRelativeDiff((*both)[0], (*both)[1]), 1e-2);  // The input matters.
}

// ----------------------------------------------------------- real weights

struct GoldenEntry {
  std::string hash;
  std::vector<float> values;
};

constexpr char kGoldenPath[] = "dmue/testdata/face_descriptor_golden.txt";
constexpr char kWeightsKey[] = "@weights";  // Its hash is the entry's `hash`.

std::map<std::string, GoldenEntry> ReadGolden() {
  std::ifstream in(kGoldenPath);
  EXPECT_TRUE(in.good()) << "cannot read " << kGoldenPath;
  std::map<std::string, GoldenEntry> golden;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() == 2 && fields[0] == kWeightsKey) {
      golden[kWeightsKey].hash = fields[1];
      continue;
    }
    EXPECT_EQ(fields.size(), 2u + FaceDescriptorNet::kDescriptorSize) << line.substr(0, 60);
    GoldenEntry& entry = golden[fields[0]];
    entry.hash = fields[1];
    for (size_t i = 2; i < fields.size(); ++i) {
      float v = 0;
      EXPECT_TRUE(absl::SimpleAtof(fields[i], &v)) << fields[i];
      entry.values.push_back(v);
    }
  }
  return golden;
}

// The net from face-api's model folder, loaded once; null (with the reason
// in `why`) when the weights are absent.
const FaceDescriptorNet* RealNet(std::string* why) {
  static const auto* net = new absl::StatusOr<FaceDescriptorNet>(FaceDescriptorNet::Load(DefaultFaceApiModelDir()));
  if (net->ok()) return &**net;
  *why = absl::StrCat(net->status().ToString(),
                      " -- run tools/setup.sh (fetches @vladmandic/face-api@1.7.15 into ~/.cache/dmue-npm) "
                      "or set DMUE_FACE_API_DIR (bazel test --test_env=DMUE_FACE_API_DIR=...)");
  return nullptr;
}

#define REAL_NET_OR_SKIP(var)                        \
  std::string var##_why;                             \
  const FaceDescriptorNet* var = RealNet(&var##_why); \
  if (var == nullptr) GTEST_SKIP() << var##_why

at::Tensor DescribeOne(const FaceDescriptorNet& net, const cv::Mat& rgb) {
  absl::StatusOr<at::Tensor> d = net.Descriptor(Batch({rgb}));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? d->squeeze(0) : torch::zeros({128});
}

// Every weight of the manifest is used, and decodes bit for bit as TF.js
// decodes it (the golden's hash of tf.io.decodeWeights' float32 bytes).
TEST(FaceDescriptorNetRealTest, DecodesEveryWeightAsTfjs) {
  REAL_NET_OR_SKIP(net);
  absl::StatusOr<io::TfjsWeights> weights =
      io::ReadTfjsWeights(absl::StrCat(DefaultFaceApiModelDir(), "/", kFaceApiManifest));
  ASSERT_TRUE(weights.ok()) << weights.status();
  const auto expected = FaceDescriptorNet::WeightShapes();
  ASSERT_EQ(weights->weights().size(), expected.size());
  uint64_t h = testing::kFnvOffset;
  for (size_t i = 0; i < expected.size(); ++i) {
    const io::TfjsWeight& w = weights->weights()[i];
    EXPECT_EQ(w.name, expected[i].first);
    EXPECT_EQ(w.shape, expected[i].second);
    h = testing::Fnv1a64(w.floats.data(), w.floats.size() * sizeof(float), h);
  }
  EXPECT_EQ(absl::StrFormat("%016x", h), ReadGolden()[kWeightsKey].hash);
}

TEST(FaceDescriptorNetRealTest, MatchesFaceApiGolden) {
  REAL_NET_OR_SKIP(net);
  const std::map<std::string, GoldenEntry> golden = ReadGolden();
  std::vector<FaceInput> inputs = testing::SyntheticFaceInputs();
  const size_t synthetic = inputs.size();
  absl::StatusOr<std::vector<FaceInput>> photos = testing::PhotoFaceInputs();
  if (photos.ok()) inputs.insert(inputs.end(), photos->begin(), photos->end());
  if (!photos.ok()) std::cout << "photo inputs skipped: " << photos.status() << "\n";
  int compared = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto it = golden.find(inputs[i].name);
    ASSERT_NE(it, golden.end()) << inputs[i].name << " is not in the golden";
    const std::string hash = absl::StrFormat("%016x", testing::PixelHash(inputs[i].rgb));
    if (hash != it->second.hash) {
      // Synthetic pixels are pure integer arithmetic; photo pixels depend on
      // this machine's libjpeg and OpenCV.
      ASSERT_GE(i, synthetic) << inputs[i].name << ": pixel hash " << hash << ", golden " << it->second.hash;
      std::cout << inputs[i].name << ": skipped, decoded pixels differ from the golden's (hash " << hash << ")\n";
      continue;
    }
    const at::Tensor ours = DescribeOne(*net, inputs[i].rgb);
    const at::Tensor ref = torch::tensor(it->second.values);
    const double rel = MaxRelativeDiff(ours, ref);
    std::cout << absl::StrFormat("%-18s max |ours - face-api| / max |face-api| = %.3g\n", inputs[i].name, rel);
    EXPECT_LT(rel, 1e-5) << inputs[i].name;  // Measured <= 8e-7; dividing by 256 gives 4e-4.
    ++compared;
  }
  EXPECT_GE(compared, static_cast<int>(synthetic));
}

TEST(FaceDescriptorNetRealTest, SameFaceIsCloserThanAnotherPerson) {
  REAL_NET_OR_SKIP(net);
  absl::StatusOr<std::vector<FaceInput>> photos = testing::PhotoFaceInputs();
  if (!photos.ok()) GTEST_SKIP() << photos.status();
  std::map<std::string, at::Tensor> d;
  for (const FaceInput& input : *photos) d[input.name] = DescribeOne(*net, input.rgb);
  const auto dist = [&](const char* a, const char* b) { return (d[a] - d[b]).norm().item<double>(); };
  const double flipped = dist("faceid_11", "faceid_11_flipped"), same = dist("faceid_11", "faceid_12");
  const double other = dist("faceid_11", "sdk_cropped"), other12 = dist("faceid_12", "sdk_cropped");
  const double toddler = dist("faceid_11", "test1");
  std::cout << absl::StrFormat(
      "distances: 11-11flipped %.3f, 11-12 (same person) %.3f, 11-other %.3f, 12-other %.3f, 11-toddler %.3f\n",
      flipped, same, other, other12, toddler);
  EXPECT_LT(flipped, other);
  EXPECT_LT(same, other);
  EXPECT_LT(same, other12);
  EXPECT_LT(same, toddler);
  // dlib's threshold: one person within 0.6, different people beyond.
  EXPECT_LT(same, 0.6);
  EXPECT_GT(other, 0.6);
}

}  // namespace
}  // namespace dmue
