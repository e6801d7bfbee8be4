#include "preprocessing/similarity_transform.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace dmue::preprocessing {
namespace {

TEST(EstimateSimilarityTest, RecoversAnExactSimilarity) {
  const double angle = 0.3, scale = 1.7, tx = 12.5, ty = -4.25;
  const cv::Matx33d truth(scale * std::cos(angle), -scale * std::sin(angle), tx,
                          scale * std::sin(angle), scale * std::cos(angle), ty, 0, 0, 1);
  std::vector<cv::Point2d> src = {{10, 20}, {50, 22}, {30, 40}, {12, 60}, {48, 61}};
  std::vector<cv::Point2d> dst;
  for (const auto& p : src) dst.push_back(ApplyTransform(truth, p));
  auto m = EstimateSimilarity(src, dst);
  ASSERT_TRUE(m.ok()) << m.status();
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(m->val[i], truth.val[i], 1e-9) << i;
}

TEST(EstimateSimilarityTest, LeastSquaresAndReflectionFree) {
  // A mirrored point set cannot be matched by a similarity: the fit stays a
  // proper rotation (det > 0).
  std::vector<cv::Point2d> src = {{0, 0}, {1, 0}, {0, 1}};
  std::vector<cv::Point2d> dst = {{0, 0}, {-1, 0}, {0, 1}};
  auto m = EstimateSimilarity(src, dst);
  ASSERT_TRUE(m.ok());
  EXPECT_GT((*m)(0, 0) * (*m)(1, 1) - (*m)(0, 1) * (*m)(1, 0), 0);
}

TEST(EstimateSimilarityTest, BadInputs) {
  EXPECT_FALSE(EstimateSimilarity({{1, 1}}, {{2, 2}}).ok());
  EXPECT_FALSE(EstimateSimilarity({{1, 1}, {2, 2}}, {{2, 2}}).ok());
  EXPECT_FALSE(EstimateSimilarity({{1, 1}, {1, 1}}, {{2, 2}, {3, 3}}).ok());
  EXPECT_FALSE(EstimateSimilarity({{NAN, 1}, {1, 1}}, {{2, 2}, {3, 3}}).ok());
}

TEST(WarpSimilarityTest, IdentityCopiesAndTranslationShifts) {
  cv::Mat img(20, 30, CV_8UC3);
  cv::randu(img, 0, 256);
  img.at<cv::Vec3b>(0, 0) = {0, 0, 0};  // Contains 0 and 255: no cval quirk.
  img.at<cv::Vec3b>(0, 1) = {255, 255, 255};
  auto same = WarpSimilarity(img, cv::Matx33d::eye(), img.size(), WarpRounding::kRound);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(cv::norm(*same, img, cv::NORM_INF), 0);
  // The reference's truncation lowers some exact copies by one level.
  auto trunc = WarpSimilarity(img, cv::Matx33d::eye(), img.size(),
                              WarpRounding::kTruncateLikeReference);
  ASSERT_TRUE(trunc.ok());
  EXPECT_LE(cv::norm(*trunc, img, cv::NORM_INF), 1);
  cv::Mat v33(1, 1, CV_8UC3, cv::Scalar(33, 33, 33));
  auto t33 = WarpSimilarity(v33, cv::Matx33d::eye(), v33.size(),
                            WarpRounding::kTruncateLikeReference);
  ASSERT_TRUE(t33.ok());
  EXPECT_EQ(t33->at<cv::Vec3b>(0, 0)[0], 32);  // One of the 24 lowered levels.

  const cv::Matx33d shift(1, 0, 5, 0, 1, 3, 0, 0, 1);
  auto moved = WarpSimilarity(img, shift, cv::Size(40, 30));
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->at<cv::Vec3b>(3 + 7, 5 + 9), img.at<cv::Vec3b>(7, 9));
  EXPECT_EQ(moved->at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));  // Outside: black.
}

// Affine matrices take a row-vectorised path; the same transform written
// with a homogeneous scale of 1/2 (inverse's last row (0, 0, 2): every step
// of its sample positions is exactly twice the affine one's, then halved)
// takes the one-sample-at-a-time path. Both must agree bit for bit, with and
// without 0 in the image's range (skimage's cval quirk) and in both rounding
// modes, including samples off the image and on its border.
TEST(WarpSimilarityTest, AffinePathEqualsSampleBySamplePath) {
  cv::RNG rng(7);
  cv::Mat with_zero(37, 53, CV_8UC3);
  cv::randu(with_zero, 0, 256);
  with_zero.at<cv::Vec3b>(3, 4) = {0, 0, 0};
  cv::Mat no_zero(41, 29, CV_8UC3);
  cv::randu(no_zero, 20, 200);  // Range [20, 199]: 0 outside it.
  int checked = 0;
  for (const cv::Mat& img : {with_zero, no_zero}) {
    for (int t = 0; t < 6; ++t) {
      const double angle = rng.uniform(-0.6, 0.6), scale = rng.uniform(0.4, 3.5);
      const double tx = rng.uniform(-30.0, 60.0), ty = rng.uniform(-30.0, 60.0);
      const cv::Matx33d m(scale * std::cos(angle), -scale * std::sin(angle), tx,
                          scale * std::sin(angle), scale * std::cos(angle), ty, 0, 0, 1);
      for (WarpRounding rounding : {WarpRounding::kRound, WarpRounding::kTruncateLikeReference}) {
        auto fast = WarpSimilarity(img, m, cv::Size(97, 83), rounding);
        auto slow = WarpSimilarity(img, m * 0.5, cv::Size(97, 83), rounding);
        ASSERT_TRUE(fast.ok());
        ASSERT_TRUE(slow.ok());
        EXPECT_EQ(cv::norm(*fast, *slow, cv::NORM_INF), 0) << "case " << t;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 24);
}

TEST(WarpSimilarityTest, RejectsBadInput) {
  EXPECT_FALSE(WarpSimilarity(cv::Mat(), cv::Matx33d::eye(), cv::Size(4, 4)).ok());
  cv::Mat img(4, 4, CV_8UC3, cv::Scalar(1, 2, 3));
  EXPECT_FALSE(WarpSimilarity(img, cv::Matx33d::zeros(), cv::Size(4, 4)).ok());
  EXPECT_FALSE(WarpSimilarity(img, cv::Matx33d::eye(), cv::Size(0, 4)).ok());
}

}  // namespace
}  // namespace dmue::preprocessing
