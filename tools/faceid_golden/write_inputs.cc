// Writes the face descriptor golden's inputs (dmue/testing/face_inputs.h) as
// raw 150x150x3 RGB files <name>.rgb plus inputs.txt ("<name> <fnv1a64>" per
// line) into --out, for make_golden.js to run face-api on the same pixels.
//
//   bazel run //tools/faceid_golden:write_inputs -- --out=/tmp/faceid_inputs
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dmue/base/files.h"
#include "dmue/base/status_macros.h"
#include "dmue/base/workspace.h"
#include "dmue/testing/face_inputs.h"

DEFINE_string(out, "", "folder for the .rgb files and inputs.txt (created by the caller)");

namespace {

absl::Status WriteInputs(const std::string& dir) {
  std::vector<dmue::testing::FaceInput> inputs = dmue::testing::SyntheticFaceInputs();
  ASSIGN_OR_RETURN(std::vector<dmue::testing::FaceInput> photos, dmue::testing::PhotoFaceInputs());
  inputs.insert(inputs.end(), photos.begin(), photos.end());
  std::string index;
  for (const dmue::testing::FaceInput& input : inputs) {
    const cv::Mat& rgb = input.rgb;
    const std::string bytes(reinterpret_cast<const char*>(rgb.data), rgb.total() * rgb.elemSize());
    RETURN_IF_ERROR(dmue::WriteFileAtomically(absl::StrCat(dir, "/", input.name, ".rgb"), bytes));
    absl::StrAppendFormat(&index, "%s %016x\n", input.name, dmue::testing::PixelHash(rgb));
  }
  return dmue::WriteFileAtomically(absl::StrCat(dir, "/inputs.txt"), index);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) LOG(FATAL) << s;
  if (FLAGS_out.empty()) LOG(FATAL) << "--out is required";
  if (absl::Status s = WriteInputs(FLAGS_out); !s.ok()) LOG(FATAL) << s;
  return 0;
}
