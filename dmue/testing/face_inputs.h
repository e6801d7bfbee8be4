// Test helper: the fixed 150x150 RGB inputs of the face descriptor's parity
// golden (dmue/testdata/face_descriptor_golden.txt). One source for the C++
// test and for tools/faceid_golden (which writes them as raw RGB for face-api
// in node), so both sides see the same pixels; the golden records each
// input's FNV-1a hash to prove it.
#ifndef DMUE_TESTING_FACE_INPUTS_H_
#define DMUE_TESTING_FACE_INPUTS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "absl/status/statusor.h"
#include "dmue/base/hash.h"

namespace dmue::testing {

struct FaceInput {
  std::string name;
  cv::Mat rgb;  // 150x150 CV_8UC3, RGB, contiguous.
};

// Integer patterns, the same on every machine: "synthetic_stripes" (high
// frequency) and "synthetic_blobs" (smooth gradients and rings).
std::vector<FaceInput> SyntheticFaceInputs();

// Faces from ../shared/data/photos, decoded by dmue/io and resized to 150x150
// with OpenCV: "test1" (DMUE's toddler, 256x256, area-resized), "faceid_11",
// "faceid_11_flipped" (mirrored), "faceid_12" (same person as 11) and
// "sdk_cropped" (another person; the 112x112 crops are resized bilinearly).
// NotFound when ../shared is absent. The pixels depend on libjpeg and OpenCV;
// compare hashes before comparing descriptors.
absl::StatusOr<std::vector<FaceInput>> PhotoFaceInputs();

// FNV-1a (64 bit, dmue/base/hash.h; the golden also hashes the decoded
// weights with it).
using ::dmue::Fnv1a64;
using ::dmue::kFnvOffset;

// Fnv1a64 of the pixel bytes, row by row.
uint64_t PixelHash(const cv::Mat& rgb);

}  // namespace dmue::testing

#endif  // DMUE_TESTING_FACE_INPUTS_H_
