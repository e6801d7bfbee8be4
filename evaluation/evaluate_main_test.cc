// The evaluate and audit binaries with and without a model spec: the spec
// beside the checkpoint names the classes in the report, a --crop that
// disagrees with it is refused naming it, and without a spec or
// --class_names the classes are index names with a warning.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dmue/model_bundle.h"
#include "evaluation/test_fixtures.h"
#include "gtest/gtest.h"

namespace dmue::evaluation {
namespace {

using testing::CheckpointWithSpec;
using testing::MakeTinyData;
using testing::MakeTinyModels;
using testing::TinySpec;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct BinaryRun {
  int exit_code = -1;
  std::string out, err;
};

// Runs a binary of this package (a data dependency, in the runfiles tree the
// test starts in) with `args`.
BinaryRun RunBinary(const std::string& binary, const std::vector<std::string>& args) {
  static int count = 0;
  const std::string log = ::testing::TempDir() + "/" + binary + std::to_string(count++);
  std::string command = "evaluation/" + binary + " --num_threads=1 --num_workers=1";
  for (const std::string& arg : args) command += " '" + arg + "'";
  command += " >" + log + ".out 2>" + log + ".err";
  const int status = std::system(command.c_str());
  BinaryRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = Read(log + ".out");
  run.err = Read(log + ".err");
  return run;
}

std::vector<std::string> ValData(const std::string& output_dir) {
  return {"--lmdb=" + MakeTinyData().lmdb, "--list=" + MakeTinyData().val_soft_list, "--output_dir=" + output_dir};
}

TEST(EvaluateMainTest, SpecBesideTheCheckpointNamesTheClasses) {
  const std::string checkpoint =
      CheckpointWithSpec(MakeTinyModels().inference, "main_spec", TinySpec({"anger", "happiness", "contempt"}));
  const std::string out = ::testing::TempDir() + "/main_spec_out";
  std::vector<std::string> args = ValData(out);
  args.push_back("--checkpoint=" + checkpoint);
  const BinaryRun run = RunBinary("evaluate", args);  // no --resize / --crop: the spec's
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string json = Read(out + "/report.json");
  EXPECT_NE(json.find("\"class_names\": [\"anger\", \"happiness\", \"contempt\"]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"model_spec\": \"" + SpecPathFor(checkpoint) + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("36 -> 32"), std::string::npos) << json;
  EXPECT_NE(run.out.find("happiness"), std::string::npos) << run.out;
  EXPECT_EQ(run.err.find("warning"), std::string::npos) << run.err;
}

// --precision: auto (the default) times the candidates and logs its choice,
// fp32 / bf16 are fixed, anything else (or --bf16 against another precision)
// is refused naming the flag.
TEST(EvaluateMainTest, PrecisionFlag) {
  const std::string checkpoint = CheckpointWithSpec(MakeTinyModels().inference, "main_precision", TinySpec());
  const std::string out = ::testing::TempDir() + "/main_precision_out";
  std::vector<std::string> args = ValData(out);
  args.push_back("--checkpoint=" + checkpoint);
  const BinaryRun automatic = RunBinary("evaluate", args);
  ASSERT_EQ(automatic.exit_code, 0) << automatic.err;
  EXPECT_NE(automatic.err.find("AUTO inference compute: "), std::string::npos) << automatic.err;
  for (const auto& [flag, logged] : std::vector<std::pair<std::string, std::string>>{
           {"--precision=fp32", "inference compute: fp32 channels-last (fixed)"},
           {"--precision=bf16", "inference compute: bf16 channels-last (fixed)"},
           {"--bf16", "inference compute: bf16 channels-last (fixed)"}}) {
    std::vector<std::string> fixed = args;
    fixed.push_back(flag);
    const BinaryRun run = RunBinary("evaluate", fixed);
    ASSERT_EQ(run.exit_code, 0) << flag << ": " << run.err;
    EXPECT_NE(run.err.find(logged), std::string::npos) << flag << ": " << run.err;
  }
  for (const auto& [bad, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--precision=fp16"}, "--precision: 'fp16' is not one of auto, fp32, bf16"},
           {{"--bf16", "--precision=fp32"}, "--bf16 contradicts --precision=fp32"}}) {
    std::vector<std::string> refused = args;
    refused.insert(refused.end(), bad.begin(), bad.end());
    const BinaryRun run = RunBinary("evaluate", refused);
    EXPECT_EQ(run.exit_code, 1) << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
  }
}

TEST(EvaluateMainTest, DisagreeingCropIsRefusedNamingTheSpec) {
  const std::string checkpoint = CheckpointWithSpec(MakeTinyModels().inference, "main_crop", TinySpec());
  std::vector<std::string> args = ValData(::testing::TempDir() + "/main_crop_out");
  args.push_back("--checkpoint=" + checkpoint);
  args.push_back("--crop=28");
  const BinaryRun run = RunBinary("evaluate", args);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("--crop=28 disagrees with the model spec " + SpecPathFor(checkpoint)), std::string::npos)
      << run.err;
}

TEST(EvaluateMainTest, WithoutSpecOrNamesClassesAreIndices) {
  const std::string out = ::testing::TempDir() + "/main_nospec_out";
  std::vector<std::string> args = ValData(out);
  args.push_back("--checkpoint=" + MakeTinyModels().inference);
  args.push_back("--resize=36");
  args.push_back("--crop=32");
  const BinaryRun run = RunBinary("evaluate", args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(Read(out + "/report.json").find("\"class_names\": [\"0\", \"1\", \"2\"]"), std::string::npos);
  EXPECT_NE(Read(out + "/report.json").find("\"model_spec\": null"), std::string::npos);
  EXPECT_NE(run.err.find("warning"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("--class_names"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("--spec"), std::string::npos) << run.err;
}

TEST(AuditMainTest, SpecFlagNamesTheClasses) {
  // A snapshot has no spec beside it: --spec names the exported model's.
  const std::string exported =
      CheckpointWithSpec(MakeTinyModels().inference, "audit_spec", TinySpec({"anger", "happiness", "contempt"}));
  const std::string out = ::testing::TempDir() + "/audit_spec_out";
  std::vector<std::string> args = ValData(out);
  args.push_back("--checkpoint=" + MakeTinyModels().multi_branch);
  args.push_back("--spec=" + SpecPathFor(exported));
  args.push_back("--top_k=2");
  const BinaryRun run = RunBinary("audit", args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string json = Read(out + "/audit_summary.json");
  EXPECT_NE(json.find("\"class_names\": [\"anger\", \"happiness\", \"contempt\"]"), std::string::npos) << json;
  EXPECT_NE(run.out.find("JS(votes_off, pred_off)"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace dmue::evaluation
