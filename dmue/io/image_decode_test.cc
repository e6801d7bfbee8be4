#include "dmue/io/image_decode.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

// libjpeg (linked by the test only) writes CMYK and huge streamed JPEGs that
// cv::imencode cannot.
#include <jpeglib.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue::io {
namespace {

using ::dmue::testing::TempPath;
using ::dmue::testing::WriteFile;

// EXPECT_THAT(text, HasSubstr(part)) without gmock.
#define EXPECT_CONTAINS(text, part)                                          \
  EXPECT_NE(std::string(text).find(part), std::string::npos)              \
      << "'" << (text) << "' lacks '" << (part) << "'"

cv::Mat Pattern(int w, int h, int type = CV_8UC3) {
  cv::Mat m(h, w, type);
  const int ch = m.channels();
  const double maxv = m.depth() == CV_16U ? 65535.0 : 255.0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < ch; ++c) {
        const double v = std::fmod((x * 7 + y * 3 + c * 50) / 300.0, 1.0) * maxv;
        if (m.depth() == CV_16U) {
          m.ptr<uint16_t>(y)[x * ch + c] = static_cast<uint16_t>(v);
        } else {
          m.ptr<uint8_t>(y)[x * ch + c] = static_cast<uint8_t>(v);
        }
      }
    }
  }
  return m;
}

std::string Encode(const cv::Mat& m, const std::string& ext, std::vector<int> params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, m, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

// A JPEG written scanline by scanline, so that huge images need no buffer.
// `components` 3 (RGB) or 4 (CMYK, every pixel = `cmyk`).
std::string LibjpegEncode(int w, int h, int components, const unsigned char cmyk[4] = nullptr,
                          int quality = 80) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long out_size = 0;  // NOLINT: libjpeg's type.
  jpeg_mem_dest(&cinfo, &out, &out_size);
  cinfo.image_width = w;
  cinfo.image_height = h;
  cinfo.input_components = components;
  cinfo.in_color_space = components == 4 ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  if (components == 4) jpeg_set_colorspace(&cinfo, JCS_CMYK);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<unsigned char> row(static_cast<size_t>(w) * components);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < components; ++c) {
        row[x * components + c] =
            components == 4 ? cmyk[c] : static_cast<unsigned char>((x / 64 + y / 64 + c) * 40);
      }
    }
    JSAMPROW rp = row.data();
    jpeg_write_scanlines(&cinfo, &rp, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string data(reinterpret_cast<char*>(out), out_size);
  jpeg_destroy_compress(&cinfo);
  std::free(out);
  return data;
}

// Inserts an EXIF APP1 segment with the given orientation right after SOI.
std::string WithExifOrientation(const std::string& jpeg, int orientation) {
  std::string tiff = std::string("MM\0\x2a", 4) + std::string("\0\0\0\x08", 4);
  tiff += std::string("\0\x01", 2);                        // One IFD entry.
  tiff += std::string("\x01\x12\0\x03\0\0\0\x01", 8);      // Orientation, SHORT, 1.
  tiff += std::string("\0", 1) + static_cast<char>(orientation) + std::string("\0\0", 2);
  tiff += std::string("\0\0\0\0", 4);                      // No next IFD.
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t len = payload.size() + 2;
  std::string seg = "\xFF\xE1";
  seg += static_cast<char>(len >> 8);
  seg += static_cast<char>(len & 0xFF);
  seg += payload;
  return jpeg.substr(0, 2) + seg + jpeg.substr(2);
}

TEST(PeekImageHeaderTest, ReadsDimensionsOfEveryFormat) {
  const cv::Mat img = Pattern(37, 23);
  struct Case {
    std::string ext;
    ImageFormat format;
  };
  std::vector<Case> cases = {{".png", ImageFormat::kPng},
                             {".jpg", ImageFormat::kJpeg},
                             {".bmp", ImageFormat::kBmp}};
  if (cv::haveImageWriter(".webp")) cases.push_back({".webp", ImageFormat::kWebp});
  for (const Case& c : cases) {
    const std::string bytes = Encode(img, c.ext);
    absl::StatusOr<ImageHeader> h = PeekImageHeader(bytes, "x" + c.ext);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->format, c.format) << c.ext;
    EXPECT_EQ(h->width, 37) << c.ext;
    EXPECT_EQ(h->height, 23) << c.ext;
    EXPECT_TRUE(h->complete);
  }
  if (cv::haveImageWriter(".webp")) {
    // Lossless WebP (quality > 100) has a VP8L chunk.
    const std::string lossless = Encode(img, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101});
    absl::StatusOr<ImageHeader> h = PeekImageHeader(lossless);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->width, 37);
    EXPECT_EQ(h->height, 23);
  }
  // GIF: a logical screen descriptor is enough for the header.
  const std::string gif = std::string("GIF89a") + std::string("\x40\x01\xf0\x00", 4) +
                          std::string(20, '\0');
  absl::StatusOr<ImageHeader> g = PeekImageHeader(gif);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->format, ImageFormat::kGif);
  EXPECT_EQ(g->width, 320);
  EXPECT_EQ(g->height, 240);
}

TEST(DecodeImageTest, LosslessRoundTripIsRgb) {
  const cv::Mat bgr = Pattern(41, 29);
  cv::Mat expected_rgb;
  cv::cvtColor(bgr, expected_rgb, cv::COLOR_BGR2RGB);
  for (const std::string ext : {".png", ".bmp"}) {
    absl::StatusOr<cv::Mat> rgb = DecodeImageRgb(Encode(bgr, ext), ext);
    ASSERT_TRUE(rgb.ok()) << rgb.status();
    EXPECT_EQ(rgb->type(), CV_8UC3);
    EXPECT_TRUE(rgb->isContinuous());
    EXPECT_EQ(cv::norm(*rgb, expected_rgb, cv::NORM_INF), 0) << ext;
  }
  // JPEG is lossy: check the channel order on a flat colour.
  const cv::Mat flat(16, 16, CV_8UC3, cv::Scalar(200, 100, 30));  // BGR.
  absl::StatusOr<cv::Mat> jpg = DecodeImageRgb(Encode(flat, ".jpg"), "flat.jpg");
  ASSERT_TRUE(jpg.ok()) << jpg.status();
  const cv::Scalar m = cv::mean(*jpg);
  EXPECT_NEAR(m[0], 30, 3);
  EXPECT_NEAR(m[1], 100, 3);
  EXPECT_NEAR(m[2], 200, 3);
}

TEST(DecodeImageTest, EmptyAndNonImageBytesNameTheSource) {
  absl::StatusOr<cv::Mat> empty = DecodeImageRgb("", "photos/empty.jpg");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(empty.status().message(), "photos/empty.jpg");
  EXPECT_CONTAINS(empty.status().message(), "0 bytes");

  absl::StatusOr<cv::Mat> text = DecodeImageRgb("hello, this is text", "notes.png");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(text.status().message(), "notes.png");
  EXPECT_CONTAINS(text.status().message(), "not a PNG, JPEG");
}

TEST(DecodeImageTest, TruncatedFilesAreErrors) {
  const cv::Mat bgr = Pattern(120, 90);
  const std::string png = Encode(bgr, ".png");
  const std::string jpg = Encode(bgr, ".jpg");
  // Cut inside the header, inside the data, and just before the end.
  for (const std::string* full : {&png, &jpg}) {
    for (size_t cut : {size_t{5}, size_t{20}, full->size() / 2, full->size() - 2}) {
      const std::string part = full->substr(0, cut);
      absl::StatusOr<cv::Mat> r = DecodeImageRgb(part, "cut.img");
      EXPECT_FALSE(r.ok()) << "cut at " << cut << " of " << full->size();
      EXPECT_CONTAINS(r.status().message(), "cut.img");
    }
  }
  absl::StatusOr<cv::Mat> j = DecodeImageRgb(jpg.substr(0, jpg.size() / 2), "half.jpg");
  EXPECT_CONTAINS(j.status().message(), "truncated");
  // Trailing bytes after the end marker are harmless.
  EXPECT_TRUE(DecodeImageRgb(jpg + std::string(100, '\0'), "padded.jpg").ok());
  // The caller may accept truncated JPEGs (libjpeg fills the rest with grey).
  ImageLimits lenient;
  lenient.allow_truncated = true;
  absl::StatusOr<cv::Mat> l = DecodeImageRgb(jpg.substr(0, jpg.size() / 2), "half.jpg", lenient);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->cols, 120);
}

TEST(DecodeImageTest, GrayAlphaAnd16Bit) {
  // Grayscale -> three equal channels.
  cv::Mat gray = Pattern(30, 20, CV_8UC1);
  absl::StatusOr<cv::Mat> g = DecodeImageRgb(Encode(gray, ".png"), "gray.png");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->type(), CV_8UC3);
  std::vector<cv::Mat> ch;
  cv::split(*g, ch);
  for (const cv::Mat& c : ch) EXPECT_EQ(cv::norm(c, gray, cv::NORM_INF), 0);
  absl::StatusOr<cv::Mat> gj = DecodeImageRgb(Encode(gray, ".jpg"), "gray.jpg");
  ASSERT_TRUE(gj.ok()) << gj.status();
  EXPECT_EQ(gj->type(), CV_8UC3);

  // RGBA -> alpha dropped, colour kept (not composited).
  cv::Mat bgra = Pattern(30, 20, CV_8UC4);
  absl::StatusOr<ImageHeader> ha = PeekImageHeader(Encode(bgra, ".png"));
  ASSERT_TRUE(ha.ok());
  EXPECT_EQ(ha->channels, 4);
  absl::StatusOr<cv::Mat> a = DecodeImageRgb(Encode(bgra, ".png"), "rgba.png");
  ASSERT_TRUE(a.ok()) << a.status();
  cv::Mat expected;
  cv::cvtColor(bgra, expected, cv::COLOR_BGRA2RGB);
  EXPECT_EQ(cv::norm(*a, expected, cv::NORM_INF), 0);

  // 16-bit -> 8-bit (high byte).
  cv::Mat deep = Pattern(30, 20, CV_16UC3);
  const std::string png16 = Encode(deep, ".png");
  absl::StatusOr<ImageHeader> h16 = PeekImageHeader(png16);
  ASSERT_TRUE(h16.ok());
  EXPECT_EQ(h16->bit_depth, 16);
  absl::StatusOr<cv::Mat> d = DecodeImageRgb(png16, "deep.png");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->type(), CV_8UC3);
  cv::Mat deep_rgb, expected8;
  cv::cvtColor(deep, deep_rgb, cv::COLOR_BGR2RGB);
  deep_rgb.convertTo(expected8, CV_8U, 1.0 / 256.0);
  EXPECT_LE(cv::norm(*d, expected8, cv::NORM_INF), 1);
}

TEST(DecodeImageTest, CmykJpeg) {
  const unsigned char white[4] = {255, 255, 255, 255};  // Adobe-style inverted CMYK.
  const unsigned char cyan[4] = {0, 255, 255, 255};
  const std::string w = LibjpegEncode(16, 16, 4, white, 95);
  absl::StatusOr<ImageHeader> h = PeekImageHeader(w);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->channels, 4);
  absl::StatusOr<cv::Mat> wr = DecodeImageRgb(w, "white_cmyk.jpg");
  ASSERT_TRUE(wr.ok()) << wr.status();
  ASSERT_EQ(wr->type(), CV_8UC3);
  EXPECT_GT(cv::mean(*wr)[0], 245);
  absl::StatusOr<cv::Mat> cr = DecodeImageRgb(LibjpegEncode(16, 16, 4, cyan, 95), "cyan.jpg");
  ASSERT_TRUE(cr.ok()) << cr.status();
  const cv::Scalar m = cv::mean(*cr);
  EXPECT_LT(m[0], 20);   // R
  EXPECT_GT(m[1], 235);  // G
  EXPECT_GT(m[2], 235);  // B
}

TEST(DecodeImageTest, ExifOrientationIgnoredByDefaultAppliedOnRequest) {
  const std::string jpg = WithExifOrientation(Encode(Pattern(40, 20), ".jpg"), 6);
  absl::StatusOr<ImageHeader> h = PeekImageHeader(jpg);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->exif_orientation, 6);
  absl::StatusOr<DecodedImage> plain = DecodeImage(jpg, "exif.jpg");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->rgb.cols, 40);
  EXPECT_EQ(plain->rgb.rows, 20);
  ImageLimits rotate;
  rotate.apply_exif_orientation = true;
  absl::StatusOr<DecodedImage> rotated = DecodeImage(jpg, "exif.jpg", rotate);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->rgb.cols, 20);
  EXPECT_EQ(rotated->rgb.rows, 40);
  EXPECT_EQ(rotated->full_width, 20);
  EXPECT_EQ(rotated->full_height, 40);
}

TEST(DecodeImageTest, DecompressionBombsAreRefusedFromTheHeader) {
  // A PNG whose IHDR claims 100000 x 100000 (tiny file, 10^10 pixels).
  std::string png = Encode(Pattern(8, 8), ".png");
  const unsigned char big[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0};
  png.replace(16, 8, reinterpret_cast<const char*>(big), 8);
  absl::StatusOr<ImageHeader> h = PeekImageHeader(png);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->width, 100000);
  absl::StatusOr<cv::Mat> r = DecodeImageRgb(png, "bomb.png");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_CONTAINS(r.status().message(), "bomb.png");
  EXPECT_CONTAINS(r.status().message(), "100000x100000");

  // A JPEG whose frame header claims 60000 x 60000.
  std::string jpg = Encode(Pattern(8, 8), ".jpg");
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  const unsigned char dims[4] = {0xEA, 0x60, 0xEA, 0x60};
  jpg.replace(sof + 5, 4, reinterpret_cast<const char*>(dims), 4);
  absl::StatusOr<cv::Mat> j = DecodeImageRgb(jpg, "bomb.jpg");
  EXPECT_EQ(j.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(DecodeImageTest, ProgressiveJpegIsBudgetedAtItsFullSize) {
  std::vector<uchar> encoded;
  ASSERT_TRUE(cv::imencode(".jpg", Pattern(64, 48), encoded, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  std::string jpg(encoded.begin(), encoded.end());
  absl::StatusOr<ImageHeader> h = PeekImageHeader(jpg);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(h->progressive);
  EXPECT_GT(h->scans, 1);
  ASSERT_TRUE(DecodeImage(jpg, "small.jpg").ok());
  // The same file declaring 12000 x 12000: a baseline JPEG of that size
  // decodes reduced (HugeJpegDecodesReduced), but libjpeg would allocate
  // full-size coefficient buffers for this one (~1 GB from a few hundred
  // bytes), so it is refused before decoding.
  const size_t sof = jpg.find("\xFF\xC2");
  ASSERT_NE(sof, std::string::npos);
  const unsigned char dims[4] = {0x2E, 0xE0, 0x2E, 0xE0};
  jpg.replace(sof + 5, 4, reinterpret_cast<const char*>(dims), 4);
  ImageLimits limits;
  limits.max_decoded_side = 2000;
  absl::StatusOr<DecodedImage> bomb = DecodeImage(jpg, "progressive_bomb.jpg", limits);
  EXPECT_EQ(bomb.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_CONTAINS(bomb.status().message(), "progressive_bomb.jpg");
  EXPECT_CONTAINS(bomb.status().message(), "progressive JPEG declares 12000x12000");
}

TEST(DecodeImageTest, JpegScansAreLimited) {
  std::vector<uchar> encoded;
  ASSERT_TRUE(cv::imencode(".jpg", Pattern(32, 32), encoded, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  std::string jpg(encoded.begin(), encoded.end());
  // Hundreds of copies of the last scan before the end-of-image marker: each
  // would cost libjpeg a pass over the coefficients.
  const size_t last_scan = jpg.rfind("\xFF\xDA");
  const size_t eoi = jpg.rfind("\xFF\xD9");
  ASSERT_LT(last_scan, eoi);
  const std::string scan = jpg.substr(last_scan, eoi - last_scan);
  std::string many = jpg.substr(0, eoi);
  for (int i = 0; i < 300; ++i) many += scan;
  many += "\xFF\xD9";
  absl::StatusOr<ImageHeader> h = PeekImageHeader(many);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_GT(h->scans, 300);
  absl::StatusOr<DecodedImage> r = DecodeImage(many, "scans.jpg");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_CONTAINS(r.status().message(), "scans, more than the limit of 64");
}

TEST(DecodeImageTest, HugeJpegDecodesReduced) {
  // 12000 x 12000 (144 MP): over the default pixel limit, fine reduced.
  const std::string jpg = LibjpegEncode(12000, 12000, 3, nullptr, 50);
  absl::StatusOr<DecodedImage> full = DecodeImage(jpg, "huge.jpg");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_CONTAINS(full.status().message(), "max_decoded_side");
  ImageLimits limits;
  limits.max_decoded_side = 2000;
  absl::StatusOr<DecodedImage> small = DecodeImage(jpg, "huge.jpg", limits);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->rgb.cols, 1500);  // libjpeg 1/8 scaling.
  EXPECT_EQ(small->rgb.rows, 1500);
  EXPECT_EQ(small->full_width, 12000);
  EXPECT_DOUBLE_EQ(small->scale_x, 0.125);
  limits.max_decoded_side = 1000;  // 1/8 then an area resize.
  small = DecodeImage(jpg, "huge.jpg", limits);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->rgb.cols, 1000);
  EXPECT_NEAR(small->scale_y, 1000.0 / 12000.0, 1e-12);
}

TEST(DecodeImageTest, LargePngDecodesResized) {
  const cv::Mat bgr = Pattern(3000, 1000);
  ImageLimits limits;
  limits.max_decoded_side = 600;
  absl::StatusOr<DecodedImage> r = DecodeImage(Encode(bgr, ".png"), "wide.png", limits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rgb.cols, 600);
  EXPECT_EQ(r->rgb.rows, 200);
  EXPECT_DOUBLE_EQ(r->scale_x, 0.2);
  limits.max_pixels = 1'000'000;  // Non-JPEGs are decoded full size first.
  EXPECT_EQ(DecodeImage(Encode(bgr, ".png"), "wide.png", limits).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ReadImageTest, Files) {
  const std::string ok_path = TempPath("ok.png");
  WriteFile(ok_path, Encode(Pattern(10, 12), ".png"));
  absl::StatusOr<cv::Mat> ok = ReadImageRgb(ok_path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->rows, 12);

  const std::string empty_path = TempPath("empty.jpg");
  WriteFile(empty_path, "");
  absl::StatusOr<cv::Mat> empty = ReadImageRgb(empty_path);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(empty.status().message(), empty_path);

  absl::StatusOr<cv::Mat> missing = ReadImageRgb(TempPath("missing.jpg"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  EXPECT_FALSE(ReadImageRgb(TempPath("")).ok());  // A directory.

  ImageLimits tiny;
  tiny.max_bytes = 10;
  absl::StatusOr<cv::Mat> big = ReadImageRgb(ok_path, tiny);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace dmue::io
