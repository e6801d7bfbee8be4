// The embedded default data: synthetic cartoon faces with 7 or 8 expression
// classes, drawn with OpenCV (thousands per second on one core).
//
// Each class has a prototype of expression parameters (mouth curvature,
// openness, width and asymmetry, brow angle and height, eye openness, nose
// wrinkle). A sample perturbs its prototype (intra-class variation) and adds
// nuisance: position jitter, scale, rotation, skin tone, background gradient,
// directional lighting and pixel noise. Mixtures interpolate two prototypes
// with known weights, giving a known ground-truth label distribution.
//
// Class order: 8 classes = FERPlus (neutral, happiness, surprise, sadness,
// anger, disgust, fear, contempt); 7 = RAF-DB (surprise, fear, disgust,
// happiness, sadness, anger, neutral); 2-6 = the first FERPlus classes.
//
// Determinism: sample i is a pure function of (options, seed, i); its
// generator is std::mt19937_64(MixSeed(seed, {i})).
#ifndef DATASETS_SYNTHETIC_FACES_H_
#define DATASETS_SYNTHETIC_FACES_H_

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"

namespace dmue::datasets {

struct ExpressionParams {
  float mouth_curve = 0;   // + smile, - frown
  float mouth_open = 0;    // 0 closed .. 1 wide open
  float mouth_width = 1;   // relative
  float mouth_asym = 0;    // one-sided lift (contempt)
  float brow_angle = 0;    // + inner ends raised (sad, fear), - lowered (anger)
  float brow_raise = 0;    // + raised, - lowered
  float eye_open = 1;      // relative eye height
  float nose_wrinkle = 0;  // 0..1 (disgust)
};

const std::vector<std::string>& SyntheticClassNames(int num_classes);
ExpressionParams ExpressionPrototype(int label, int num_classes);

struct SyntheticFaceOptions {
  int size = 64;         // square image side, 32..512
  int num_classes = 8;   // 2..8
  bool color = true;     // false: 1-channel grey images
  // Nuisance.
  float position_jitter = 0.06f;  // max shift, fraction of size
  float scale_min = 0.85f, scale_max = 1.1f;
  float max_rotation_deg = 12.0f;
  float noise_std = 6.0f;  // pixel noise on 0..255
  float lighting = 0.35f;  // max relative brightness change across the face
  float intra_class_std = 0.12f;  // std of per-parameter jitter
  // Mixtures: with probability mixture_rate a sample blends its class c with a
  // random other class d, weight m ~ U(0, max_mixture) on d.
  float mixture_rate = 0.0f;
  float max_mixture = 0.5f;
  // Hard label of a mixture: argmax of its distribution (true) or a draw from it.
  bool label_from_argmax = false;
};

absl::Status ValidateSyntheticFaceOptions(const SyntheticFaceOptions& options);

struct SyntheticFace {
  cv::Mat image;                   // CV_8UC3 RGB, or CV_8UC1 when !color
  int label = 0;                   // hard label (argmax or sampled)
  int base_class = 0;              // the dominant class c
  std::vector<float> distribution;  // ground-truth label distribution (sums to 1)
  bool mixed = false;
};

class SyntheticFaceGenerator {
 public:
  // Options must be valid (ValidateSyntheticFaceOptions); checked with CHECK.
  SyntheticFaceGenerator(const SyntheticFaceOptions& options, uint64_t seed);
  // Sample `index`; classes cycle through the index order (index % C) so any
  // prefix is balanced.
  SyntheticFace Generate(int64_t index) const;
  // Draws one face with explicit parameters (class prototypes, for tests and
  // contact sheets); `rng_seed` drives the nuisance.
  cv::Mat Draw(const ExpressionParams& params, uint64_t rng_seed) const;
  const SyntheticFaceOptions& options() const { return options_; }

 private:
  SyntheticFaceOptions options_;
  uint64_t seed_;
};

// A grid: one row per class, `per_class` samples each (the first generated
// samples of that class), RGB.
cv::Mat SyntheticContactSheet(const SyntheticFaceGenerator& generator, int per_class);

}  // namespace dmue::datasets

#endif  // DATASETS_SYNTHETIC_FACES_H_
