// Decodes images with our decoder (dmue/io/image_decode.h) and writes each as
// a binary PPM (P6, 8-bit RGB), so that Python scripts on a machine without
// PIL or OpenCV bindings (tools/reference_bench/reference_mtcnn.py) get the
// same pixels the C++ detector sees.
//
//   bazel-bin/tools/decode_rgb IN.jpg OUT.ppm [IN2.png OUT2.ppm ...]
#include <cstdio>
#include <fstream>
#include <string>

#include <opencv2/core/mat.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/image_decode.h"

namespace {

absl::Status WritePpm(const cv::Mat& rgb, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) return absl::NotFoundError(absl::StrCat("cannot write ", path));
  out << "P6\n" << rgb.cols << " " << rgb.rows << "\n255\n";
  for (int r = 0; r < rgb.rows; ++r) {
    out.write(reinterpret_cast<const char*>(rgb.ptr<uint8_t>(r)), static_cast<std::streamsize>(rgb.cols) * 3);
  }
  if (!out) return absl::DataLossError(absl::StrCat("short write to ", path));
  return absl::OkStatus();
}

absl::Status Convert(const std::string& in, const std::string& out) {
  ASSIGN_OR_RETURN(cv::Mat rgb, dmue::io::ReadImageRgb(in));
  return WritePpm(rgb, out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc % 2 != 1) {
    std::fprintf(stderr, "usage: %s IN OUT.ppm [IN OUT.ppm ...]\n", argv[0]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const absl::Status status = Convert(argv[i], argv[i + 1]);
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
  }
  return 0;
}
