// The model contract: the spec beside the checkpoint or --spec, flags that
// agree or disagree with it, and index names (with a warning) without one.
#include "evaluation/model_contract.h"

#include <filesystem>

#include "dmue/model_bundle.h"
#include "evaluation/test_fixtures.h"
#include "gtest/gtest.h"

namespace dmue::evaluation {
namespace {

using testing::CheckpointWithSpec;
using testing::kClasses;
using testing::MakeTinyModels;
using testing::TinySpec;

bool Contains(const absl::Status& status, const std::string& text) {
  return status.message().find(text) != absl::string_view::npos;
}

TEST(FindModelSpecTest, BesideTheCheckpointOrNamed) {
  const std::string checkpoint = CheckpointWithSpec(MakeTinyModels().inference, "find_spec", TinySpec());
  auto beside = FindModelSpec(checkpoint, "");
  ASSERT_TRUE(beside.ok()) << beside.status();
  ASSERT_TRUE(beside->has_value());
  EXPECT_EQ((*beside)->path, SpecPathFor(checkpoint));
  EXPECT_EQ((*beside)->spec.class_names(1), "joy");

  // No spec beside the fixture's own checkpoint: none, not an error.
  auto none = FindModelSpec(MakeTinyModels().inference, "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  // --spec wins over the one beside; a missing --spec is an error naming it.
  ModelSpec other = TinySpec({"x", "y", "z"});
  const std::string other_path = std::filesystem::path(checkpoint).parent_path().string() + "/other.spec.pbtxt";
  ASSERT_TRUE(WriteModelSpec(other_path, other).ok());
  auto named = FindModelSpec(checkpoint, other_path);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ((*named)->spec.class_names(0), "x");
  auto missing = FindModelSpec(checkpoint, "/no/such.spec.pbtxt");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status(), "--spec")) << missing.status();
  EXPECT_TRUE(Contains(missing.status(), "/no/such.spec.pbtxt")) << missing.status();
}

TEST(ResolveContractTest, SpecGivesNamesAndInput) {
  ModelSpec spec = TinySpec();
  spec.mutable_input()->set_mean(0.4f);
  spec.mutable_input()->set_std(0.3f);
  spec.mutable_input()->set_grayscale(true);
  const SpecFile file{"m.spec.pbtxt", spec};
  auto contract = ResolveContract("m.pth", file, {}, kClasses);
  ASSERT_TRUE(contract.ok()) << contract.status();
  EXPECT_EQ(contract->class_names, (std::vector<std::string>{"anger", "joy", "calm"}));
  EXPECT_FALSE(contract->index_names);
  EXPECT_TRUE(contract->warning.empty());
  ASSERT_TRUE(contract->input.has_value());
  EXPECT_EQ(contract->input->origin, "m.spec.pbtxt");
  EXPECT_EQ(contract->input->resize, 36);
  EXPECT_EQ(contract->input->crop, 32);
  EXPECT_FLOAT_EQ(contract->input->mean, 0.4f);
  EXPECT_FLOAT_EQ(contract->input->std, 0.3f);
  EXPECT_TRUE(contract->input->grayscale);

  // Agreeing --class_names are fine; disagreeing ones name the flag and the spec.
  EXPECT_TRUE(ResolveContract("m.pth", file, {"anger", "joy", "calm"}, kClasses).ok());
  auto wrong = ResolveContract("m.pth", file, {"joy", "anger", "calm"}, kClasses);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Contains(wrong.status(), "--class_names (joy,anger,calm)")) << wrong.status();
  EXPECT_TRUE(Contains(wrong.status(), "m.spec.pbtxt")) << wrong.status();

  // A spec for another class count.
  EXPECT_TRUE(Contains(ResolveContract("m.pth", file, {}, 4).status(), "the checkpoint has 4 classes"));
}

TEST(ResolveContractTest, BgrIsRefused) {
  ModelSpec spec = TinySpec();
  spec.mutable_input()->set_channel_order(InputSpec::BGR);
  auto contract = ResolveContract("m.pth", SpecFile{"bgr.spec.pbtxt", spec}, {}, kClasses);
  ASSERT_FALSE(contract.ok());
  EXPECT_TRUE(Contains(contract.status(), "bgr.spec.pbtxt: input.channel_order BGR")) << contract.status();
}

TEST(ResolveContractTest, WithoutSpecNamesAreNotGuessed) {
  // 8 classes used to become the FERPlus names; now index names and a warning.
  auto contract = ResolveContract("runs/x/model.pth", std::nullopt, {}, 8);
  ASSERT_TRUE(contract.ok()) << contract.status();
  EXPECT_EQ(contract->class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7"}));
  EXPECT_TRUE(contract->index_names);
  EXPECT_FALSE(contract->input.has_value());
  EXPECT_NE(contract->warning.find("--class_names"), std::string::npos) << contract->warning;
  EXPECT_NE(contract->warning.find("--spec"), std::string::npos) << contract->warning;
  EXPECT_NE(contract->warning.find("runs/x/model.spec.pbtxt"), std::string::npos) << contract->warning;

  auto named = ResolveContract("m.pth", std::nullopt, {"a", "b", "c"}, 3);
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->class_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(named->warning.empty());
  EXPECT_TRUE(Contains(ResolveContract("m.pth", std::nullopt, {"a", "b"}, 3).status(),
                       "--class_names has 2 names but the checkpoint has 3 classes"));
}

TEST(CheckSameContractTest, BaselineMustPrepareTheSameImages) {
  const SpecFile audited{"a.spec.pbtxt", TinySpec()};
  auto contract = ResolveContract("a.pth", audited, {}, kClasses);
  ASSERT_TRUE(contract.ok());
  EXPECT_TRUE(CheckSameContract(SpecFile{"b.spec.pbtxt", TinySpec()}, *contract).ok());
  absl::Status names = CheckSameContract(SpecFile{"b.spec.pbtxt", TinySpec({"x", "y", "z"})}, *contract);
  EXPECT_TRUE(Contains(names, "b.spec.pbtxt has class_names x,y,z")) << names;
  ModelSpec grey = TinySpec();
  grey.mutable_input()->set_grayscale(true);
  absl::Status input = CheckSameContract(SpecFile{"b.spec.pbtxt", grey}, *contract);
  EXPECT_TRUE(Contains(input, "b.spec.pbtxt and a.spec.pbtxt prepare faces differently")) << input;
}

}  // namespace
}  // namespace dmue::evaluation
