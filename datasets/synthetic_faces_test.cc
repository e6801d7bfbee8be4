#include "datasets/synthetic_faces.h"

#include <chrono>

#include <opencv2/imgproc.hpp>

#include "datasets/label_list.h"
#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

TEST(SyntheticFacesTest, Deterministic) {
  SyntheticFaceOptions options;
  options.mixture_rate = 0.5f;
  SyntheticFaceGenerator a(options, 7), b(options, 7), c(options, 8);
  for (int64_t i : {0, 1, 17, 1000}) {
    SyntheticFace fa = a.Generate(i), fb = b.Generate(i), fc = c.Generate(i);
    EXPECT_EQ(cv::norm(fa.image, fb.image, cv::NORM_INF), 0.0);
    EXPECT_EQ(fa.distribution, fb.distribution);
    EXPECT_EQ(fa.label, fb.label);
    EXPECT_GT(cv::norm(fa.image, fc.image, cv::NORM_L1), 0.0);
  }
  EXPECT_EQ(a.Generate(3).image.type(), CV_8UC3);
  options.color = false;
  options.size = 96;
  SyntheticFace grey = SyntheticFaceGenerator(options, 1).Generate(3);
  EXPECT_EQ(grey.image.type(), CV_8UC1);
  EXPECT_EQ(grey.image.rows, 96);
}

TEST(SyntheticFacesTest, LabelDistributionsAreValid) {
  for (bool argmax : {false, true}) {
    SyntheticFaceOptions options;
    options.num_classes = 7;
    options.mixture_rate = 1.0f;
    options.label_from_argmax = argmax;
    SyntheticFaceGenerator generator(options, 3);
    double label_is_base = 0, expected_base_weight = 0;
    const int n = 2000;
    for (int i = 0; i < n; ++i) {
      SyntheticFace face = generator.Generate(i);
      ASSERT_EQ(face.distribution.size(), 7u);
      float sum = 0;
      int nonzero = 0;
      for (float p : face.distribution) {
        ASSERT_GE(p, 0.0f);
        sum += p;
        nonzero += p > 0;
      }
      EXPECT_NEAR(sum, 1.0f, 1e-6);
      EXPECT_EQ(face.base_class, i % 7);
      EXPECT_GE(face.distribution[face.base_class], 0.5f);
      EXPECT_LE(nonzero, 2);
      EXPECT_GT(face.distribution[face.label], 0.0f);
      if (argmax) EXPECT_EQ(face.label, face.base_class);
      label_is_base += face.label == face.base_class;
      expected_base_weight += face.distribution[face.base_class];
    }
    // Sampled labels follow the distribution: P(label = base) = E[1 - m] = 0.75.
    if (!argmax) EXPECT_NEAR(label_is_base / n, expected_base_weight / n, 0.03);
  }
  SyntheticFaceOptions plain;
  SyntheticFace face = SyntheticFaceGenerator(plain, 0).Generate(5);
  EXPECT_FALSE(face.mixed);
  EXPECT_EQ(face.label, 5);
  EXPECT_EQ(face.distribution[5], 1.0f);
}

TEST(SyntheticFacesTest, ValidationNamesField) {
  SyntheticFaceOptions options;
  options.num_classes = 9;
  EXPECT_NE(ValidateSyntheticFaceOptions(options).message().find("num_classes"), std::string::npos);
  options = {};
  options.max_mixture = 0.7f;
  EXPECT_NE(ValidateSyntheticFaceOptions(options).message().find("max_mixture"), std::string::npos);
}

TEST(SyntheticFacesTest, FastAndLinearlySeparableEnough) {
  SyntheticFaceOptions options;
  SyntheticFaceGenerator generator(options, 11);
  const int train = 1600, test = 800;
  std::vector<cv::Mat> features;
  std::vector<int> labels;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < train + test; ++i) {
    SyntheticFace face = generator.Generate(i);
    cv::Mat grey, small, f;
    cv::cvtColor(face.image, grey, cv::COLOR_RGB2GRAY);
    cv::resize(grey, small, cv::Size(16, 16), 0, 0, cv::INTER_AREA);
    small.convertTo(f, CV_32F);
    cv::Scalar mean, stddev;
    cv::meanStdDev(f, mean, stddev);
    f = (f - mean[0]) / (stddev[0] + 1e-3);
    features.push_back(f.reshape(1, 1));
    labels.push_back(face.label);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = (train + test) / seconds;
  std::printf("generated %.0f images/s (64x64, with feature extraction)\n", rate);
  EXPECT_GT(rate, 1000.0);
  // Nearest class mean on 16x16 normalised grey pixels: a very weak learner,
  // still well above chance (1/8) despite pose, lighting and colour nuisance.
  std::vector<cv::Mat> means(8);
  std::vector<int> counts(8, 0);
  for (int i = 0; i < train; ++i) {
    if (means[labels[i]].empty()) means[labels[i]] = cv::Mat::zeros(1, 256, CV_32F);
    means[labels[i]] += features[i];
    ++counts[labels[i]];
  }
  for (int c = 0; c < 8; ++c) means[c] /= counts[c];
  int correct = 0;
  for (int i = train; i < train + test; ++i) {
    int best = 0;
    double best_distance = 1e30;
    for (int c = 0; c < 8; ++c) {
      const double d = cv::norm(features[i], means[c], cv::NORM_L2SQR);
      if (d < best_distance) {
        best_distance = d;
        best = c;
      }
    }
    correct += best == labels[i];
  }
  const double accuracy = double(correct) / test;
  std::printf("nearest-class-mean accuracy %.3f (chance 0.125)\n", accuracy);
  EXPECT_GT(accuracy, 0.18);
}

TEST(SyntheticFacesTest, NoiseOnGeneratedLabels) {
  std::vector<LabelEntry> entries;
  SyntheticFaceGenerator generator({}, 2);
  for (int i = 0; i < 500; ++i) entries.push_back({absl::StrCat(i, ".png"), "train", generator.Generate(i).label, {}});
  auto clean = entries;
  auto changed = InjectSymmetricLabelNoise(&entries, 0.2, 8, 9);
  ASSERT_TRUE(changed.ok());
  int differ = 0;
  for (size_t i = 0; i < entries.size(); ++i) differ += entries[i].label != clean[i].label;
  EXPECT_EQ(differ, 100);
}

TEST(SyntheticFacesTest, ContactSheet) {
  SyntheticFaceGenerator generator({}, 0);
  cv::Mat sheet = SyntheticContactSheet(generator, 5);
  EXPECT_EQ(sheet.rows, 8 * 66);
  EXPECT_EQ(sheet.cols, 80 + 5 * 66);
}

}  // namespace
}  // namespace dmue::datasets
