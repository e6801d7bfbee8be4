#include "datasets/synthetic_faces.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <glog/logging.h>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "datasets/seed.h"
#include "dmue/base/field_error.h"

namespace dmue::datasets {
namespace {

constexpr int kShift = 4;  // sub-pixel bits for OpenCV drawing
constexpr double kOne = 1 << kShift;

cv::Point P(double x, double y) { return cv::Point(int(std::lround(x * kOne)), int(std::lround(y * kOne))); }
cv::Size Axes(double a, double b) {
  return cv::Size(int(std::lround(std::max(a, 0.3) * kOne)), int(std::lround(std::max(b, 0.3) * kOne)));
}

// FERPlus order.
const ExpressionParams kFerPlusPrototypes[8] = {
    // curve, open, width, asym, brow_angle, brow_raise, eye_open, wrinkle
    {0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f},      // neutral
    {1.0f, 0.3f, 1.2f, 0.0f, 0.0f, 0.1f, 0.7f, 0.0f},      // happiness
    {0.0f, 1.0f, 0.6f, 0.0f, 0.0f, 1.0f, 1.5f, 0.0f},      // surprise
    {-0.9f, 0.0f, 0.9f, 0.0f, 0.9f, 0.1f, 0.8f, 0.0f},     // sadness
    {-0.3f, 0.15f, 1.0f, 0.0f, -1.0f, -0.6f, 0.9f, 0.0f},  // anger
    {-0.5f, 0.35f, 1.05f, 0.2f, -0.5f, -0.3f, 0.55f, 1.0f},  // disgust
    {-0.3f, 0.6f, 1.1f, 0.0f, 0.8f, 0.8f, 1.4f, 0.0f},     // fear
    {0.1f, 0.0f, 0.95f, 1.0f, 0.0f, 0.0f, 0.9f, 0.0f},     // contempt
};
// RAF-DB label order -> FERPlus index.
const int kRafToFerPlus[7] = {2, 6, 5, 1, 3, 4, 0};

ExpressionParams Lerp(const ExpressionParams& a, const ExpressionParams& b, float m) {
  auto l = [m](float x, float y) { return (1 - m) * x + m * y; };
  return {l(a.mouth_curve, b.mouth_curve), l(a.mouth_open, b.mouth_open),   l(a.mouth_width, b.mouth_width),
          l(a.mouth_asym, b.mouth_asym),   l(a.brow_angle, b.brow_angle),   l(a.brow_raise, b.brow_raise),
          l(a.eye_open, b.eye_open),       l(a.nose_wrinkle, b.nose_wrinkle)};
}

cv::Scalar Colour(const cv::Vec3d& v) { return cv::Scalar(v[0], v[1], v[2]); }

}  // namespace

const std::vector<std::string>& SyntheticClassNames(int num_classes) {
  static const auto* raf = new std::vector<std::string>{"surprise", "fear",    "disgust", "happiness",
                                                         "sadness",  "anger",   "neutral"};
  static const auto* names = [] {
    auto* all = new std::vector<std::vector<std::string>>(9);
    const std::vector<std::string> fer = {"neutral", "happiness", "surprise", "sadness",
                                          "anger",   "disgust",   "fear",     "contempt"};
    for (int c = 2; c <= 8; ++c) (*all)[c] = std::vector<std::string>(fer.begin(), fer.begin() + c);
    return all;
  }();
  if (num_classes == 7) return *raf;
  return (*names)[std::clamp(num_classes, 2, 8)];
}

ExpressionParams ExpressionPrototype(int label, int num_classes) {
  if (num_classes == 7) return kFerPlusPrototypes[kRafToFerPlus[std::clamp(label, 0, 6)]];
  return kFerPlusPrototypes[std::clamp(label, 0, 7)];
}

absl::Status ValidateSyntheticFaceOptions(const SyntheticFaceOptions& o) {
  constexpr FieldErrors kFieldError("SyntheticFaceOptions");
  if (o.size < 32 || o.size > 512) return kFieldError("size", absl::StrCat("must be in [32, 512], got ", o.size));
  if (o.num_classes < 2 || o.num_classes > 8) {
    return kFieldError("num_classes", absl::StrCat("must be in [2, 8], got ", o.num_classes));
  }
  if (!(o.position_jitter >= 0 && o.position_jitter <= 0.3f))
    return kFieldError("position_jitter", "must be in [0, 0.3]");
  if (!(o.scale_min > 0.3f && o.scale_min <= o.scale_max && o.scale_max <= 2.0f)) {
    return kFieldError("scale_min", "need 0.3 < scale_min <= scale_max <= 2");
  }
  if (!(o.max_rotation_deg >= 0 && o.max_rotation_deg <= 90))
    return kFieldError("max_rotation_deg", "must be in [0, 90]");
  if (!(o.noise_std >= 0 && o.noise_std <= 100)) return kFieldError("noise_std", "must be in [0, 100]");
  if (!(o.lighting >= 0 && o.lighting <= 1)) return kFieldError("lighting", "must be in [0, 1]");
  if (!(o.intra_class_std >= 0 && o.intra_class_std <= 1)) return kFieldError("intra_class_std", "must be in [0, 1]");
  if (!(o.mixture_rate >= 0 && o.mixture_rate <= 1)) return kFieldError("mixture_rate", "must be in [0, 1]");
  if (!(o.max_mixture >= 0 && o.max_mixture <= 0.5f)) return kFieldError("max_mixture", "must be in [0, 0.5]");
  return absl::OkStatus();
}

SyntheticFaceGenerator::SyntheticFaceGenerator(const SyntheticFaceOptions& options, uint64_t seed)
    : options_(options), seed_(seed) {
  absl::Status status = ValidateSyntheticFaceOptions(options);
  CHECK(status.ok()) << status;
}

cv::Mat SyntheticFaceGenerator::Draw(const ExpressionParams& p, uint64_t rng_seed) const {
  std::mt19937_64 rng(rng_seed);
  auto uniform = [&rng](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  const int size = options_.size;
  const double s = size;

  // Background: a linear gradient between two random colours.
  const cv::Vec3d bg1(uniform(0, 255), uniform(0, 255), uniform(0, 255));
  const cv::Vec3d bg2(uniform(0, 255), uniform(0, 255), uniform(0, 255));
  const double bg_angle = uniform(0, 2 * M_PI);
  cv::Mat canvas(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y) {
    cv::Vec3b* row = canvas.ptr<cv::Vec3b>(y);
    for (int x = 0; x < size; ++x) {
      const double t = std::clamp(((x - s / 2) * std::cos(bg_angle) + (y - s / 2) * std::sin(bg_angle)) / s + 0.5, 0.0, 1.0);
      const cv::Vec3d c = bg1 * (1 - t) + bg2 * t;
      row[x] = cv::Vec3b(uint8_t(c[0]), uint8_t(c[1]), uint8_t(c[2]));
    }
  }
  // Skin, hair, features.
  const double tone = uniform(0, 1);
  cv::Vec3d skin = cv::Vec3d(250, 220, 190) * (1 - tone) + cv::Vec3d(95, 62, 42) * tone;
  skin += cv::Vec3d(uniform(-12, 12), uniform(-12, 12), uniform(-12, 12));
  const cv::Vec3d hair = cv::Vec3d(uniform(10, 120), uniform(5, 80), uniform(0, 50));
  const cv::Vec3d dark = skin * 0.55;
  const cv::Vec3d lips = cv::Vec3d(uniform(140, 200), uniform(50, 90), uniform(60, 90));
  const int aa = cv::LINE_AA;
  const double hair_top = uniform(0.0, 1.0);

  cv::ellipse(canvas, P(0.5 * s, 0.47 * s), Axes(0.37 * s, (0.40 + 0.04 * hair_top) * s), 0, 180, 360,
              Colour(hair), cv::FILLED, aa, kShift);
  cv::ellipse(canvas, P(0.5 * s, 0.53 * s), Axes(0.33 * s, 0.42 * s), 0, 0, 360, Colour(skin), cv::FILLED, aa, kShift);

  const int thick = std::max(1, int(std::lround(0.03 * s)));
  for (int side : {-1, 1}) {
    // Eyes.
    const double ex = 0.5 * s + side * 0.14 * s, ey = 0.45 * s;
    const double eye_w = 0.07 * s, eye_h = std::max(0.004 * s, 0.04 * s * p.eye_open);
    if (p.eye_open < 0.25f) {
      cv::line(canvas, P(ex - eye_w, ey), P(ex + eye_w, ey), Colour(dark * 0.5), std::max(1, thick / 2), aa, kShift);
    } else {
      cv::ellipse(canvas, P(ex, ey), Axes(eye_w, eye_h), 0, 0, 360, cv::Scalar(245, 245, 245), cv::FILLED, aa, kShift);
      const double r = std::min(0.028 * s, eye_h * 0.95);
      cv::circle(canvas, P(ex + uniform(-0.01, 0.01) * s, ey), int(std::lround(r * kOne)), cv::Scalar(30, 20, 15),
                 cv::FILLED, aa, kShift);
    }
    // Brows: inner end raised by brow_angle, both by brow_raise.
    const double by = 0.35 * s - p.brow_raise * 0.05 * s;
    const double inner_y = by - p.brow_angle * 0.04 * s, outer_y = by + p.brow_angle * 0.02 * s;
    cv::line(canvas, P(0.5 * s + side * 0.06 * s, inner_y), P(0.5 * s + side * 0.23 * s, outer_y), Colour(hair),
             thick, aa, kShift);
  }
  // Nose, with wrinkle lines for disgust.
  cv::line(canvas, P(0.5 * s, 0.50 * s), P(0.485 * s, 0.60 * s), Colour(dark), std::max(1, thick / 2), aa, kShift);
  if (p.nose_wrinkle > 0.3f) {
    for (int side : {-1, 1}) {
      cv::line(canvas, P(0.5 * s + side * 0.03 * s, 0.52 * s), P(0.5 * s + side * 0.07 * s, 0.56 * s),
               Colour(dark), std::max(1, int(thick * p.nose_wrinkle * 0.7)), aa, kShift);
    }
  }
  // Mouth: corners lifted by curvature (and on one side by asymmetry); an
  // open mouth is a filled dark region between the lips.
  const double cx = 0.5 * s, cy = 0.73 * s, w = 0.13 * s * std::max(0.3f, p.mouth_width);
  const double open = std::max(0.0f, p.mouth_open);
  std::vector<cv::Point> upper, lower;
  constexpr int kPoints = 13;
  for (int i = 0; i < kPoints; ++i) {
    const double u = -1.0 + 2.0 * i / (kPoints - 1);
    const double lift = p.mouth_curve * 0.07 * s * u * u + p.mouth_asym * 0.08 * s * std::max(u, 0.0) * u;
    upper.push_back(P(cx + u * w, cy - lift - open * 0.02 * s * (1 - u * u)));
    lower.push_back(P(cx + u * w, cy - lift + open * 0.11 * s * (1 - u * u)));
  }
  if (open > 0.08) {
    std::vector<cv::Point> polygon = upper;
    polygon.insert(polygon.end(), lower.rbegin(), lower.rend());
    cv::fillPoly(canvas, std::vector<std::vector<cv::Point>>{polygon}, cv::Scalar(60, 15, 25), aa, kShift);
    cv::polylines(canvas, std::vector<std::vector<cv::Point>>{polygon}, true, Colour(lips), std::max(1, thick / 2),
                  aa, kShift);
  } else {
    cv::polylines(canvas, std::vector<std::vector<cv::Point>>{upper}, false, Colour(lips), thick, aa, kShift);
  }

  // Pose: rotation, scale and shift.
  const double angle = uniform(-options_.max_rotation_deg, options_.max_rotation_deg);
  const double scale = uniform(options_.scale_min, options_.scale_max);
  cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(float(s / 2), float(s / 2)), angle, scale);
  m.at<double>(0, 2) += uniform(-options_.position_jitter, options_.position_jitter) * s;
  m.at<double>(1, 2) += uniform(-options_.position_jitter, options_.position_jitter) * s;
  cv::Mat posed;
  cv::warpAffine(canvas, posed, m, canvas.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);

  // Lighting (a brightness ramp in a random direction) and pixel noise.
  const double gain = uniform(0.8, 1.15), ramp = uniform(-options_.lighting, options_.lighting);
  const double light_angle = uniform(0, 2 * M_PI);
  cv::Mat light(size, size, CV_32FC3);
  for (int y = 0; y < size; ++y) {
    cv::Vec3f* row = light.ptr<cv::Vec3f>(y);
    for (int x = 0; x < size; ++x) {
      const double d = ((x - s / 2) * std::cos(light_angle) + (y - s / 2) * std::sin(light_angle)) / s;
      const float f = float(gain * (1.0 + 2.0 * ramp * d));
      row[x] = cv::Vec3f(f, f, f);
    }
  }
  cv::Mat as_float;
  posed.convertTo(as_float, CV_32FC3);
  as_float = as_float.mul(light);
  if (options_.noise_std > 0) {
    cv::Mat noise(size, size, CV_32FC3);
    cv::RNG cv_rng(rng());
    cv_rng.fill(noise, cv::RNG::NORMAL, 0.0, options_.noise_std);
    as_float += noise;
  }
  cv::Mat out;
  as_float.convertTo(out, CV_8UC3);
  if (!options_.color) cv::cvtColor(out, out, cv::COLOR_RGB2GRAY);
  return out;
}

SyntheticFace SyntheticFaceGenerator::Generate(int64_t index) const {
  std::mt19937_64 rng(MixSeed(seed_, {uint64_t(index)}));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int num_classes = options_.num_classes;
  SyntheticFace face;
  face.base_class = int(index % num_classes);
  face.distribution.assign(num_classes, 0.0f);
  ExpressionParams params = ExpressionPrototype(face.base_class, num_classes);
  // Drawn unconditionally so the stream layout does not depend on the options' rates.
  const double mix_draw = unit(rng);
  const int other_draw = std::uniform_int_distribution<int>(0, num_classes - 2)(rng);
  const float m = float(unit(rng) * options_.max_mixture);
  if (mix_draw < options_.mixture_rate && m > 0) {
    const int other = other_draw >= face.base_class ? other_draw + 1 : other_draw;
    params = Lerp(params, ExpressionPrototype(other, num_classes), m);
    face.distribution[face.base_class] = 1.0f - m;
    face.distribution[other] = m;
    face.mixed = true;
  } else {
    face.distribution[face.base_class] = 1.0f;
  }
  std::normal_distribution<float> jitter(0.0f, options_.intra_class_std);
  params.mouth_curve += jitter(rng);
  params.mouth_open = std::max(0.0f, params.mouth_open + jitter(rng));
  params.mouth_width = std::max(0.4f, params.mouth_width + 0.5f * jitter(rng));
  params.mouth_asym += 0.5f * jitter(rng);
  params.brow_angle += jitter(rng);
  params.brow_raise += jitter(rng);
  params.eye_open = std::max(0.1f, params.eye_open + jitter(rng));
  params.nose_wrinkle = std::clamp(params.nose_wrinkle + jitter(rng), 0.0f, 1.0f);
  const double label_draw = unit(rng);
  if (options_.label_from_argmax || !face.mixed) {
    face.label = int(std::max_element(face.distribution.begin(), face.distribution.end()) - face.distribution.begin());
  } else {
    double cumulative = 0;
    face.label = face.base_class;
    for (int c = 0; c < num_classes; ++c) {
      cumulative += face.distribution[c];
      if (label_draw < cumulative) {
        face.label = c;
        break;
      }
    }
  }
  face.image = Draw(params, rng());
  return face;
}

cv::Mat SyntheticContactSheet(const SyntheticFaceGenerator& generator, int per_class) {
  const SyntheticFaceOptions& o = generator.options();
  const int margin = 80, cell = o.size + 2;
  cv::Mat sheet(o.num_classes * cell, margin + per_class * cell, CV_8UC3, cv::Scalar(255, 255, 255));
  const std::vector<std::string>& names = SyntheticClassNames(o.num_classes);
  for (int c = 0; c < o.num_classes; ++c) {
    cv::putText(sheet, names[c], cv::Point(4, c * cell + cell / 2 + 4), cv::FONT_HERSHEY_SIMPLEX, 0.4,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    int64_t index = c;
    for (int k = 0; k < per_class; ++k, index += o.num_classes) {
      SyntheticFace face = generator.Generate(index);
      cv::Mat rgb = face.image;
      if (rgb.channels() == 1) cv::cvtColor(rgb, rgb, cv::COLOR_GRAY2RGB);
      rgb.copyTo(sheet(cv::Rect(margin + k * cell + 1, c * cell + 1, o.size, o.size)));
    }
  }
  return sheet;
}

}  // namespace dmue::datasets
