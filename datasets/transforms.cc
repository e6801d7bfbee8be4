#include "datasets/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "dmue/base/field_error.h"

namespace dmue::datasets {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

constexpr FieldErrors kFieldError("TransformOptions");

bool IsProbability(float p) { return p >= 0.0f && p <= 1.0f; }

// Pillow precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter.
struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;  // (xmin, count) per output index
  std::vector<int32_t> k;   // fixed point, ksize per output index
};

Coefficients Precompute(int in_size, int out_size) {
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // bilinear support 1
  Coefficients c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double t = std::abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[size_t(xx) * c.ksize + x] =
          v < 0 ? int(-0.5 + v * (1 << kPrecisionBits)) : int(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline uint8_t Clip8(int32_t v) {
  v >>= kPrecisionBits;
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

TransformOptions SizedTransform(bool train, int resize, int crop) {
  TransformOptions options;
  options.train = train;
  options.resize = resize;
  options.crop = crop;
  return options;
}

}  // namespace

TransformOptions TrainTransform(int resize, int crop) { return SizedTransform(/*train=*/true, resize, crop); }

TransformOptions EvalTransform(int resize, int crop) { return SizedTransform(/*train=*/false, resize, crop); }

absl::Status ValidateTransformOptions(const TransformOptions& o) {
  if (o.resize < 0 || o.resize > 8192)
    return kFieldError("resize", absl::StrCat("must be in [0, 8192], got ", o.resize));
  if (o.crop < 1 || o.crop > 8192) return kFieldError("crop", absl::StrCat("must be in [1, 8192], got ", o.crop));
  if (o.resize > 0 && o.crop > o.resize) {
    return kFieldError("crop", absl::StrCat("crop ", o.crop, " is larger than resize ", o.resize));
  }
  if (!IsProbability(o.noise_p)) return kFieldError("noise_p", "must be in [0, 1]");
  if (!(o.noise_var >= 0.0f)) return kFieldError("noise_var", "must be >= 0");
  if (!IsProbability(o.flip_p)) return kFieldError("flip_p", "must be in [0, 1]");
  if (!IsProbability(o.erase_p)) return kFieldError("erase_p", "must be in [0, 1]");
  if (!(o.erase_scale_min > 0.0f && o.erase_scale_min <= o.erase_scale_max && o.erase_scale_max <= 1.0f)) {
    return kFieldError("erase_scale_min", "need 0 < erase_scale_min <= erase_scale_max <= 1");
  }
  if (!(o.erase_ratio_min > 0.0f && o.erase_ratio_min <= o.erase_ratio_max)) {
    return kFieldError("erase_ratio_min", "need 0 < erase_ratio_min <= erase_ratio_max");
  }
  if (!(o.std > 0.0f)) return kFieldError("std", "must be > 0");
  if (!IsProbability(o.affine_p)) return kFieldError("affine_p", "must be in [0, 1]");
  if (!(o.rotation_deg >= 0.0f && o.rotation_deg <= 180.0f)) return kFieldError("rotation_deg", "must be in [0, 180]");
  if (!(o.scale_min > 0.0f && o.scale_min <= o.scale_max && o.scale_max <= 4.0f)) {
    return kFieldError("scale_min", "need 0 < scale_min <= scale_max <= 4");
  }
  if (!(o.shear_deg >= 0.0f && o.shear_deg < 80.0f)) return kFieldError("shear_deg", "must be in [0, 80)");
  if (!(o.translate >= 0.0f && o.translate <= 0.5f)) return kFieldError("translate", "must be in [0, 0.5]");
  return absl::OkStatus();
}

cv::Mat ResizePilBilinear(const cv::Mat& image, int height, int width) {
  CV_Assert(image.depth() == CV_8U);
  if (image.rows == height && image.cols == width) return image;
  const int channels = image.channels();
  const Coefficients horiz = Precompute(image.cols, width);
  const Coefficients vert = Precompute(image.rows, height);
  const bool need_h = width != image.cols, need_v = height != image.rows;
  // Horizontal pass over the used source rows only (as Pillow does).
  const int ybox_first = vert.bounds[0];
  const int ybox_last = vert.bounds[2 * height - 2] + vert.bounds[2 * height - 1];
  cv::Mat temp;
  int row_offset = 0;
  if (need_h) {
    temp.create(ybox_last - ybox_first, width, image.type());
    for (int y = 0; y < temp.rows; ++y) {
      const uint8_t* in = image.ptr<uint8_t>(y + ybox_first);
      uint8_t* out = temp.ptr<uint8_t>(y);
      for (int xx = 0; xx < width; ++xx) {
        const int xmin = horiz.bounds[2 * xx], xmax = horiz.bounds[2 * xx + 1];
        const int32_t* k = &horiz.k[size_t(xx) * horiz.ksize];
        for (int c = 0; c < channels; ++c) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += int32_t(in[(x + xmin) * channels + c]) * k[x];
          out[xx * channels + c] = Clip8(ss);
        }
      }
    }
    row_offset = ybox_first;
  } else {
    temp = image;
  }
  if (!need_v) return temp;
  cv::Mat out(height, width, image.type());
  const int row_len = width * channels;
  for (int yy = 0; yy < height; ++yy) {
    const int ymin = vert.bounds[2 * yy] - row_offset, ymax = vert.bounds[2 * yy + 1];
    const int32_t* k = &vert.k[size_t(yy) * vert.ksize];
    uint8_t* o = out.ptr<uint8_t>(yy);
    for (int i = 0; i < row_len; ++i) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += int32_t(temp.ptr<uint8_t>(y + ymin)[i]) * k[y];
      o[i] = Clip8(ss);
    }
  }
  return out;
}

cv::Mat AddGaussianNoise(const cv::Mat& rgb, double stddev, std::mt19937_64* rng) {
  cv::Mat noise(rgb.size(), CV_32FC(rgb.channels()));
  cv::RNG cv_rng((*rng)());
  cv_rng.fill(noise, cv::RNG::NORMAL, 0.0, stddev);
  cv::Mat as_float, out;
  rgb.convertTo(as_float, CV_32F);
  as_float += noise;
  as_float.convertTo(out, CV_8U);  // rounds and saturates
  return out;
}

bool RandomErase(float* chw, int channels, int height, int width, const TransformOptions& o,
                 std::mt19937_64* rng) {
  const double area = double(height) * width;
  const double log_r0 = std::log(double(o.erase_ratio_min)), log_r1 = std::log(double(o.erase_ratio_max));
  std::uniform_real_distribution<double> scale(o.erase_scale_min, o.erase_scale_max);
  std::uniform_real_distribution<double> log_ratio(log_r0, log_r1);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * scale(*rng);
    const double aspect = std::exp(log_ratio(*rng));
    const int h = int(std::nearbyint(std::sqrt(erase_area * aspect)));
    const int w = int(std::nearbyint(std::sqrt(erase_area / aspect)));
    if (!(h < height && w < width)) continue;
    const int i = std::uniform_int_distribution<int>(0, height - h)(*rng);
    const int j = std::uniform_int_distribution<int>(0, width - w)(*rng);
    for (int c = 0; c < channels; ++c) {
      for (int y = i; y < i + h; ++y) {
        std::fill_n(chw + (size_t(c) * height + y) * width + j, w, o.erase_value);
      }
    }
    return true;
  }
  return false;
}

cv::Mat RandomAffine(const cv::Mat& image, const TransformOptions& o, std::mt19937_64* rng) {
  auto uniform = [rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(*rng); };
  const double angle = uniform(-o.rotation_deg, o.rotation_deg) * M_PI / 180.0;
  const double scale = uniform(o.scale_min, o.scale_max);
  const double shear = std::tan(uniform(-o.shear_deg, o.shear_deg) * M_PI / 180.0);
  const double tx = uniform(-o.translate, o.translate) * image.cols;
  const double ty = uniform(-o.translate, o.translate) * image.rows;
  // Forward map p' = c + t + R * Shear * (scale (p - c)); warpAffine takes it
  // directly (it inverts the matrix itself).
  const double cx = (image.cols - 1) / 2.0, cy = (image.rows - 1) / 2.0;
  const double ca = std::cos(angle), sa = std::sin(angle);
  const double a = scale * ca, b = scale * (ca * shear - sa);
  const double c = scale * sa, d = scale * (sa * shear + ca);
  cv::Mat m = (cv::Mat_<double>(2, 3) << a, b, cx + tx - a * cx - b * cy, c, d, cy + ty - c * cx - d * cy);
  cv::Mat out;
  cv::warpAffine(image, out, m, image.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  return out;
}

int CenterCropOffset(int size, int crop) { return int(std::nearbyint((size - crop) / 2.0)); }

absl::Status ApplyTransform(const cv::Mat& rgb, const TransformOptions& o, std::mt19937_64* rng, float* out) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    return absl::InvalidArgumentError("ApplyTransform: expected a non-empty CV_8UC3 RGB image");
  }
  if (o.train && rng == nullptr) return absl::InvalidArgumentError("ApplyTransform: train transform needs an rng");
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  cv::Mat image = rgb;
  if (o.grayscale) {
    // Into a new Mat: `image` still shares the caller's pixels (read-only
    // LMDB memory for raw records).
    cv::Mat grey, replicated;
    cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
    cv::cvtColor(grey, replicated, cv::COLOR_GRAY2RGB);
    image = replicated;
  }
  if (o.train && o.noise_p > 0 && unit(*rng) < o.noise_p) {
    image = AddGaussianNoise(image, std::sqrt(double(o.noise_var)), rng);
  }
  if (o.resize > 0) image = ResizePilBilinear(image, o.resize, o.resize);
  if (o.train && o.affine_p > 0 && unit(*rng) < o.affine_p) image = RandomAffine(image, o, rng);
  if (image.rows < o.crop || image.cols < o.crop) {
    return absl::InvalidArgumentError(absl::StrCat("ApplyTransform: image ", image.cols, "x", image.rows,
                                                   " is smaller than crop ", o.crop));
  }
  int top, left;
  if (o.train && o.random_crop) {
    top = std::uniform_int_distribution<int>(0, image.rows - o.crop)(*rng);
    left = std::uniform_int_distribution<int>(0, image.cols - o.crop)(*rng);
  } else {
    top = CenterCropOffset(image.rows, o.crop);
    left = CenterCropOffset(image.cols, o.crop);
  }
  const bool flip = o.train && o.flip_p > 0 && unit(*rng) < o.flip_p;
  // ToTensor + Normalize with torchvision's float32 operation order.
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = (float(v) / 255.0f - o.mean) / o.std;
  const int n = o.crop;
  const size_t plane = size_t(n) * n;
  for (int y = 0; y < n; ++y) {
    const uint8_t* row = image.ptr<uint8_t>(top + y) + size_t(left) * 3;
    float* r = out + size_t(y) * n;
    float* g = r + plane;
    float* b = g + plane;
    if (flip) {
      for (int x = 0; x < n; ++x) {
        const uint8_t* p = row + size_t(n - 1 - x) * 3;
        r[x] = lut[p[0]];
        g[x] = lut[p[1]];
        b[x] = lut[p[2]];
      }
    } else {
      for (int x = 0; x < n; ++x) {
        const uint8_t* p = row + size_t(x) * 3;
        r[x] = lut[p[0]];
        g[x] = lut[p[1]];
        b[x] = lut[p[2]];
      }
    }
  }
  if (o.train && o.erase_p > 0 && unit(*rng) < o.erase_p) RandomErase(out, 3, n, n, o, rng);
  return absl::OkStatus();
}

}  // namespace dmue::datasets
