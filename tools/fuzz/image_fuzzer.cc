// Fuzz target: image header peeking and decoding with limits
// (dmue/io/image_decode.h), the server's and the packer's path for untrusted
// image bytes.
//
// The limits are tighter than the defaults so that each input decodes in
// milliseconds: what is fuzzed is whether the limits hold (a header that lies
// about its size, a progressive JPEG, a truncated file), not the speed of
// large decodes. The low bits of the input's length pick the options, so the
// reduced-decode, EXIF and truncated-JPEG paths are all reached without
// spending input bytes (which would shift every format's magic number).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <opencv2/core/utility.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/io/image_decode.h"

namespace dmue::fuzz {
namespace {

io::ImageLimits LimitsFor(size_t size) {
  io::ImageLimits limits;
  limits.max_bytes = int64_t{1} << 20;
  limits.max_pixels = int64_t{1} << 20;
  limits.max_jpeg_scans = 16;
  limits.max_decoded_side = (size & 1) ? 8 : 0;  // Seeds are 4-16 px.
  limits.apply_exif_orientation = (size & 2) != 0;
  limits.allow_truncated = (size & 4) != 0;
  return limits;
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // One decode at a time, on this thread: OpenCV's pool would add threads
  // that the sanitizers and the 2-core CI machine pay for.
  cv::setNumThreads(0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)dmue::io::PeekImageHeader(bytes, "fuzz");
  absl::StatusOr<dmue::io::DecodedImage> image =
      dmue::io::DecodeImage(bytes, "fuzz", dmue::fuzz::LimitsFor(size));
  // The contract: 8-bit RGB, contiguous, within the pixel limit.
  if (image.ok() &&
      (image->rgb.type() != CV_8UC3 || !image->rgb.isContinuous() ||
       image->rgb.total() > (size_t{1} << 20))) {
    std::abort();
  }
  return 0;
}
