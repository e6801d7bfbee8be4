#include "dmue/io/image_decode.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dmue/base/status_macros.h"

namespace dmue::io {
namespace {

uint32_t Be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint32_t Le16(const unsigned char* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8); }
uint32_t Le24(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16);
}
uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

absl::Status Invalid(absl::string_view source, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", why));
}

absl::Status Truncated(absl::string_view source, absl::string_view format, size_t size) {
  return Invalid(source, absl::StrCat("truncated ", format, " header (", size, " bytes)"));
}

std::string FirstBytesHex(absl::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    absl::StrAppendFormat(&out, "%s%02x", i ? " " : "", static_cast<unsigned char>(bytes[i]));
  }
  return out;
}

// EXIF orientation from the payload of an APP1 segment ("Exif\0\0" + TIFF).
int ExifOrientation(const unsigned char* p, size_t n) {
  if (n < 6 + 8 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
  const unsigned char* t = p + 6;
  const size_t tn = n - 6;
  bool little;
  if (t[0] == 'I' && t[1] == 'I') {
    little = true;
  } else if (t[0] == 'M' && t[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  auto u16 = [&](size_t off) { return little ? Le16(t + off) : Be16(t + off); };
  auto u32 = [&](size_t off) { return little ? Le32(t + off) : Be32(t + off); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd + 2 > tn) return 1;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > tn) return 1;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {
      const int v = static_cast<int>(u16(e + 8));
      return (v >= 1 && v <= 8) ? v : 1;
    }
  }
  return 1;
}

absl::StatusOr<ImageHeader> PeekJpeg(const unsigned char* b, size_t n, absl::string_view source) {
  ImageHeader h;
  h.format = ImageFormat::kJpeg;
  bool have_sof = false;
  size_t pos = 2;
  while (true) {
    // Find the next marker: 0xFF, any fill 0xFF bytes, then the marker code.
    while (pos < n && b[pos] != 0xFF) ++pos;  // Tolerate junk between segments.
    while (pos < n && b[pos] == 0xFF) ++pos;
    if (pos >= n) {
      if (!have_sof) return Truncated(source, "JPEG", n);
      h.complete = false;  // Frame header but no scan.
      return h;
    }
    const unsigned char m = b[pos++];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // Standalone markers.
    if (m == 0xD9) {
      if (!have_sof) return Invalid(source, "JPEG ends before its frame header");
      return h;
    }
    if (pos + 2 > n) {
      if (!have_sof) return Truncated(source, "JPEG", n);
      h.complete = false;
      return h;
    }
    const size_t len = Be16(b + pos);
    if (len < 2) return Invalid(source, "corrupt JPEG segment length");
    if (m == 0xDA) {  // Start of scan: the header is over.
      if (!have_sof) return Invalid(source, "JPEG scan before its frame header");
      // In entropy-coded data 0xFF is always followed by 0x00 or a RST
      // marker, so an FF D9 after the first scan is the end-of-image marker
      // and every later FF DA starts another scan.
      const absl::string_view rest(reinterpret_cast<const char*>(b) + pos, n - pos);
      h.complete = rest.rfind("\xFF\xD9") != absl::string_view::npos;
      h.scans = 1;
      for (size_t at = rest.find("\xFF\xDA"); at != absl::string_view::npos; at = rest.find("\xFF\xDA", at + 2)) {
        ++h.scans;
      }
      return h;
    }
    if (pos + len > n) {
      if (!have_sof) return Truncated(source, "JPEG", n);
      h.complete = false;
      return h;
    }
    const unsigned char* seg = b + pos + 2;
    const size_t seg_len = len - 2;
    const bool is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (is_sof && !have_sof) {
      if (seg_len < 6) return Invalid(source, "corrupt JPEG frame header");
      h.bit_depth = seg[0];
      h.height = Be16(seg + 1);
      h.width = Be16(seg + 3);
      h.channels = seg[5];
      h.progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
      if (h.width == 0 || h.height == 0) {
        return Invalid(source, absl::StrCat("JPEG declares an empty image (", h.width, "x",
                                            h.height, ")"));
      }
      have_sof = true;
    } else if (m == 0xE1 && h.exif_orientation == 1) {
      h.exif_orientation = ExifOrientation(seg, seg_len);
    }
    pos += len;
  }
}

absl::StatusOr<ImageHeader> PeekPng(const unsigned char* b, size_t n, absl::string_view source) {
  if (n < 33) return Truncated(source, "PNG", n);
  if (std::memcmp(b + 12, "IHDR", 4) != 0 || Be32(b + 8) != 13) {
    return Invalid(source, "PNG without an IHDR chunk");
  }
  ImageHeader h;
  h.format = ImageFormat::kPng;
  h.width = Be32(b + 16);
  h.height = Be32(b + 20);
  h.bit_depth = b[24];
  switch (b[25]) {
    case 0: h.channels = 1; break;
    case 2: h.channels = 3; break;
    case 3: h.channels = 3; break;  // Palette (maybe with tRNS transparency).
    case 4: h.channels = 2; break;
    case 6: h.channels = 4; break;
    default: return Invalid(source, absl::StrCat("PNG colour type ", b[25], " is invalid"));
  }
  if (h.width == 0 || h.height == 0 || h.width > 0x7FFFFFFF || h.height > 0x7FFFFFFF) {
    return Invalid(source, absl::StrCat("PNG declares invalid size ", h.width, "x", h.height));
  }
  return h;
}

absl::StatusOr<ImageHeader> PeekBmp(const unsigned char* b, size_t n, absl::string_view source) {
  if (n < 26) return Truncated(source, "BMP", n);
  ImageHeader h;
  h.format = ImageFormat::kBmp;
  const uint32_t dib = Le32(b + 14);
  if (dib == 12) {
    h.width = Le16(b + 18);
    h.height = Le16(b + 20);
    h.bit_depth = static_cast<int>(Le16(b + 24));
  } else if (dib >= 16 && n >= 30) {
    h.width = static_cast<int32_t>(Le32(b + 18));
    h.height = static_cast<int32_t>(Le32(b + 22));
    h.bit_depth = static_cast<int>(Le16(b + 28));
  } else {
    return Invalid(source, absl::StrCat("BMP with unknown header size ", dib));
  }
  if (h.height < 0) h.height = -h.height;  // Top-down bitmap.
  if (h.width <= 0 || h.height <= 0) {
    return Invalid(source, absl::StrCat("BMP declares invalid size ", h.width, "x", h.height));
  }
  h.channels = h.bit_depth == 32 ? 4 : 3;
  return h;
}

absl::StatusOr<ImageHeader> PeekGif(const unsigned char* b, size_t n, absl::string_view source) {
  if (n < 10) return Truncated(source, "GIF", n);
  ImageHeader h;
  h.format = ImageFormat::kGif;
  h.width = Le16(b + 6);
  h.height = Le16(b + 8);
  h.bit_depth = 8;
  if (h.width == 0 || h.height == 0) {
    return Invalid(source, absl::StrCat("GIF declares invalid size ", h.width, "x", h.height));
  }
  return h;
}

absl::StatusOr<ImageHeader> PeekWebp(const unsigned char* b, size_t n, absl::string_view source) {
  if (n < 30) return Truncated(source, "WebP", n);
  ImageHeader h;
  h.format = ImageFormat::kWebp;
  h.bit_depth = 8;
  if (std::memcmp(b + 12, "VP8 ", 4) == 0) {
    if (b[23] != 0x9d || b[24] != 0x01 || b[25] != 0x2a) {
      return Invalid(source, "WebP (lossy) without a VP8 start code");
    }
    h.width = Le16(b + 26) & 0x3fff;
    h.height = Le16(b + 28) & 0x3fff;
    h.channels = 3;
  } else if (std::memcmp(b + 12, "VP8L", 4) == 0) {
    if (b[20] != 0x2f) return Invalid(source, "WebP (lossless) without its signature");
    const uint32_t bits = Le32(b + 21);
    h.width = (bits & 0x3fff) + 1;
    h.height = ((bits >> 14) & 0x3fff) + 1;
    h.channels = (bits >> 28) & 1 ? 4 : 3;
  } else if (std::memcmp(b + 12, "VP8X", 4) == 0) {
    h.width = int64_t{Le24(b + 24)} + 1;
    h.height = int64_t{Le24(b + 27)} + 1;
    h.channels = (b[20] & 0x10) ? 4 : 3;
  } else {
    return Invalid(source, "WebP with an unknown first chunk");
  }
  if (h.width == 0 || h.height == 0) {
    return Invalid(source, absl::StrCat("WebP declares invalid size ", h.width, "x", h.height));
  }
  return h;
}

// Downscale factor of libjpeg's DCT scaling that brings `side` to at most
// `max_side` (or the strongest one, 8).
int JpegReduction(int64_t side, int64_t max_side) {
  for (int r : {1, 2, 4, 8}) {
    if ((side + r - 1) / r <= max_side) return r;
  }
  return 8;
}

bool SwapsAxes(int orientation) { return orientation >= 5 && orientation <= 8; }

}  // namespace

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "png";
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kBmp: return "bmp";
    case ImageFormat::kGif: return "gif";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

absl::StatusOr<ImageHeader> PeekImageHeader(absl::string_view bytes, absl::string_view source) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  if (n == 0) return Invalid(source, "empty (0 bytes), not an image");
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return PeekJpeg(b, n, source);
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return PeekPng(b, n, source);
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return PeekBmp(b, n, source);
  if (n >= 6 && (std::memcmp(b, "GIF87a", 6) == 0 || std::memcmp(b, "GIF89a", 6) == 0)) {
    return PeekGif(b, n, source);
  }
  if (n >= 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) {
    return PeekWebp(b, n, source);
  }
  return Invalid(source, absl::StrCat("not a PNG, JPEG, BMP, GIF or WebP image (", n,
                                      " bytes, starting ", FirstBytesHex(bytes), ")"));
}

absl::StatusOr<DecodedImage> DecodeImage(absl::string_view bytes, absl::string_view source,
                                         const ImageLimits& limits) {
  if (static_cast<int64_t>(bytes.size()) > limits.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        source, ": ", bytes.size(), " bytes exceeds the limit of ", limits.max_bytes, " bytes"));
  }
  ASSIGN_OR_RETURN(ImageHeader header, PeekImageHeader(bytes, source));
  const ImageHeader& h = header;
  if (!h.complete && !limits.allow_truncated) {
    return Invalid(source, absl::StrCat("truncated ", ImageFormatName(h.format),
                                        " (no end-of-image marker after the scan data)"));
  }

  const int64_t longer = std::max(h.width, h.height);
  const bool reduce = limits.max_decoded_side > 0 && longer > limits.max_decoded_side;
  int reduction = 1;
  if (reduce && h.format == ImageFormat::kJpeg) {
    reduction = JpegReduction(longer, limits.max_decoded_side);
  }
  if (h.format == ImageFormat::kJpeg && h.scans > limits.max_jpeg_scans) {
    return absl::ResourceExhaustedError(absl::StrCat(source, ": JPEG with ", h.scans,
                                                     " scans, more than the limit of ", limits.max_jpeg_scans));
  }
  if (h.progressive && h.width * h.height > limits.max_pixels) {
    return absl::ResourceExhaustedError(absl::StrCat(
        source, ": progressive JPEG declares ", h.width, "x", h.height, ", more than the limit of ",
        limits.max_pixels, " pixels (its decoder holds full-size coefficient buffers even when decoding reduced)"));
  }
  const int64_t held_w = (h.width + reduction - 1) / reduction;
  const int64_t held_h = (h.height + reduction - 1) / reduction;
  if (held_w * held_h > limits.max_pixels) {
    return absl::ResourceExhaustedError(absl::StrCat(
        source, ": ", ImageFormatName(h.format), " declares ", h.width, "x", h.height,
        reduction > 1 ? absl::StrCat(" (", held_w, "x", held_h, " after 1/", reduction,
                                     " reduction)")
                      : std::string(),
        ", more than the limit of ", limits.max_pixels, " pixels",
        h.format == ImageFormat::kJpeg && !reduce
            ? " (set max_decoded_side to decode it reduced)"
            : ""));
  }

  int flags = cv::IMREAD_COLOR;
  switch (reduction) {
    case 2: flags = cv::IMREAD_REDUCED_COLOR_2; break;
    case 4: flags = cv::IMREAD_REDUCED_COLOR_4; break;
    case 8: flags = cv::IMREAD_REDUCED_COLOR_8; break;
    default: break;
  }
  if (!limits.apply_exif_orientation) flags |= cv::IMREAD_IGNORE_ORIENTATION;

  // imdecode only reads the buffer; wrap it without a copy.
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1,
                       const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    return Invalid(source, absl::StrCat("cannot decode ", ImageFormatName(h.format), ": ",
                                        e.what()));
  }
  if (bgr.empty()) {
    return Invalid(source,
                   absl::StrCat("cannot decode ", ImageFormatName(h.format), " ", h.width, "x",
                                h.height, " (corrupt, truncated or unsupported by this OpenCV)"));
  }
  if (bgr.type() != CV_8UC3) {
    return absl::InternalError(absl::StrCat(source, ": decoder returned type ", bgr.type()));
  }

  DecodedImage out;
  out.header = h;
  const bool swap = limits.apply_exif_orientation && SwapsAxes(h.exif_orientation);
  out.full_width = swap ? h.height : h.width;
  out.full_height = swap ? h.width : h.height;

  cv::Mat rgb;
  const int64_t got_longer = std::max(bgr.cols, bgr.rows);
  if (reduce && got_longer > limits.max_decoded_side) {
    const double s = static_cast<double>(limits.max_decoded_side) / got_longer;
    const int w = std::max(1, static_cast<int>(std::lround(bgr.cols * s)));
    const int hh = std::max(1, static_cast<int>(std::lround(bgr.rows * s)));
    cv::Mat small;
    cv::resize(bgr, small, cv::Size(w, hh), 0, 0, cv::INTER_AREA);
    bgr = std::move(small);
  }
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);  // Always a fresh, contiguous Mat.
  out.rgb = std::move(rgb);
  out.scale_x = static_cast<double>(out.rgb.cols) / out.full_width;
  out.scale_y = static_cast<double>(out.rgb.rows) / out.full_height;
  return out;
}

absl::StatusOr<cv::Mat> DecodeImageRgb(absl::string_view bytes, absl::string_view source,
                                       const ImageLimits& limits) {
  ASSIGN_OR_RETURN(DecodedImage image, DecodeImage(bytes, source, limits));
  return std::move(image.rgb);
}

absl::StatusOr<DecodedImage> ReadImage(const std::string& path, const ImageLimits& limits) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path, limits.max_bytes));
  return DecodeImage(bytes, path, limits);
}

absl::StatusOr<cv::Mat> ReadImageRgb(const std::string& path, const ImageLimits& limits) {
  ASSIGN_OR_RETURN(DecodedImage image, ReadImage(path, limits));
  return std::move(image.rgb);
}

}  // namespace dmue::io
