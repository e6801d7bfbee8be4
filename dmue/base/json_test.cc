#include "dmue/base/json.h"

#include <string>

#include "gtest/gtest.h"

namespace dmue {
namespace {

// The message of `parsed`'s error (empty when it parsed).
std::string Error(const absl::StatusOr<int64_t>& parsed) {
  return parsed.ok() ? "" : std::string(parsed.status().message());
}

TEST(ParseBoundedJsonTest, ParsesWithinTheCap) {
  const auto parsed = ParseBoundedJson(R"({"a": [1, [2]]})", 3, "doc");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)["a"][1][0], 2);
}

TEST(ParseBoundedJsonTest, RefusesNestingBeyondTheCapNamingTheInput) {
  // Depth 4 ([[[[ ) against a cap of 3; far deeper input stops at the same level.
  for (const std::string& text : {std::string("[[[[1]]]]"), std::string(200000, '[')}) {
    const auto parsed = ParseBoundedJson(text, 3, "manifest.json");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), "manifest.json nests deeper than 3 levels");
  }
}

TEST(ParseBoundedJsonTest, RefusesMalformedText) {
  for (const char* text : {"", "{", "[1,]", "{\"a\" 1}", "nul"}) {
    const auto parsed = ParseBoundedJson(text, 8, "request body");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().message(), "request body is not valid JSON") << text;
  }
}

TEST(JsonMemberTest, FindsMembersOfObjectsOnly) {
  const nlohmann::json value = nlohmann::json::parse(R"({"a": 1, "b": [1]})");
  ASSERT_NE(JsonMember(value, "a"), nullptr);
  EXPECT_EQ(*JsonMember(value, "a"), 1);
  EXPECT_EQ(JsonMember(value, "missing"), nullptr);
  EXPECT_EQ(JsonMember(value["b"], "a"), nullptr);
  EXPECT_EQ(JsonMember(nlohmann::json(3), "a"), nullptr);
}

TEST(JsonInt64Test, AcceptsEveryInt64AndNamesTheRest) {
  const auto parse = [](const char* text) { return JsonInt64(nlohmann::json::parse(text), "shape"); };
  EXPECT_EQ(*parse("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(*parse("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(*parse("0"), 0);
  EXPECT_EQ(Error(parse("9223372036854775808")), "shape: 9223372036854775808 is beyond int64");
  EXPECT_EQ(Error(parse("2.5")), "shape: 2.5 is not an integer");
  EXPECT_EQ(Error(parse("\"3\"")), "shape: \"3\" is not an integer");
  EXPECT_EQ(Error(parse("true")), "shape: true is not an integer");
}

}  // namespace
}  // namespace dmue
