// Image transforms of the reference training and evaluation pipelines, on
// 8-bit RGB HWC images (cv::Mat CV_8UC3), writing float CHW output.
//
// Train (reference make_dataloader + dataset):
//   [optional grey conversion] -> Gaussian noise (p 0.25, variance 30 on 0..255 values, rounded and clipped)
//   -> Resize((resize, resize)) with PIL bilinear semantics
//   -> [optional random affine warp, off by default]
//   -> RandomCrop(crop) -> RandomHorizontalFlip(0.5) -> ToTensor
//   -> Normalize(0.5, 0.5) -> RandomErasing(p 0.5, scale 0.02-0.25,
//      ratio 0.3-3.3, value 0; torchvision semantics, 10 attempts).
// Eval: Resize((resize, resize)) -> CenterCrop(crop) -> ToTensor -> Normalize.
//
// Randomness: every random decision is drawn from the std::mt19937_64 passed
// in, in the order noise, affine, crop, flip, erasing (a disabled step
// draws nothing, so configs without affine keep their streams). The loader seeds one generator
// per sample with MixSeed(seed, {epoch, position}) (seed.h), so augmentations
// are reproducible whatever the worker count. The streams are not torch's, so
// values differ from a PyTorch run; distributions are the same.
#ifndef DATASETS_TRANSFORMS_H_
#define DATASETS_TRANSFORMS_H_

#include <random>

#include <opencv2/core.hpp>

#include "absl/status/status.h"

namespace dmue::datasets {

struct TransformOptions {
  bool train = false;
  int resize = 256;  // square Resize((resize, resize)); 0 keeps the input size
  int crop = 224;    // square crop; must be <= the resized size
  // Training only:
  float noise_p = 0.25f;
  float noise_var = 30.0f;  // variance on 0..255 values (std sqrt(30))
  bool random_crop = true;  // false: centre crop also in training
  float flip_p = 0.5f;
  float erase_p = 0.5f;
  float erase_scale_min = 0.02f, erase_scale_max = 0.25f;
  float erase_ratio_min = 0.3f, erase_ratio_max = 3.3f;
  float erase_value = 0.0f;  // in normalised units (0 = mid grey)
  // Random affine warp about the centre (see AugmentationConfig).
  float affine_p = 0.0f;
  float rotation_deg = 0.0f;
  float scale_min = 1.0f, scale_max = 1.0f;
  float shear_deg = 0.0f;
  float translate = 0.0f;  // fraction of the side, in x and y
  // Both:
  float mean = 0.5f, std = 0.5f;
  // Grey (ITU-R 601 luma, OpenCV's RGB2GRAY) replicated to 3 channels first:
  // a model trained on grey faces (FER2013) sees grey faces from colour photos.
  bool grayscale = false;
};

TransformOptions TrainTransform(int resize = 256, int crop = 224);
TransformOptions EvalTransform(int resize = 256, int crop = 224);

// Checks sizes and probabilities; errors name the field.
absl::Status ValidateTransformOptions(const TransformOptions& options);

// Applies the transform to `rgb` (CV_8UC3, any size) and writes 3*crop*crop
// floats, CHW, to `out`. `rng` may be null for eval transforms.
absl::Status ApplyTransform(const cv::Mat& rgb, const TransformOptions& options, std::mt19937_64* rng,
                            float* out);

// Building blocks (exposed for tests and other pipelines).

// PIL's Image.resize(..., BILINEAR) (Pillow's separable resampler with its
// antialiasing support scaling and 22-bit fixed point): bit-exact with
// torchvision's Resize on PIL images. Identity when the size is unchanged.
cv::Mat ResizePilBilinear(const cv::Mat& image, int height, int width);
// Adds N(0, stddev^2) noise to every value, rounding and clipping to 0..255.
cv::Mat AddGaussianNoise(const cv::Mat& rgb, double stddev, std::mt19937_64* rng);
// torchvision RandomErasing.get_params + fill, on a CHW float buffer; returns
// whether a region was erased (the probability check is the caller's).
bool RandomErase(float* chw, int channels, int height, int width, const TransformOptions& options,
                 std::mt19937_64* rng);
// Rotation, isotropic scale, horizontal shear and shift drawn from `options`
// (in that order), applied about the image centre; bilinear, mirrored borders.
cv::Mat RandomAffine(const cv::Mat& image, const TransformOptions& options, std::mt19937_64* rng);
// torchvision CenterCrop offset: int(round((size - crop) / 2)), half to even.
int CenterCropOffset(int size, int crop);

}  // namespace dmue::datasets

#endif  // DATASETS_TRANSFORMS_H_
