#include "datasets/fer2013_csv.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

std::string Pixels(int value) {
  std::string s;
  for (int i = 0; i < 2304; ++i) s += (i ? " " : "") + std::to_string((value + i) % 256);
  return s;
}

TEST(Fer2013CsvTest, ParsesRowsSplitsAndPixels) {
  const std::string text = "emotion,pixels,Usage\n0," + Pixels(0) + ",Training\n3," + Pixels(7) +
                           ",PublicTest\r\n6," + Pixels(9) + ",PrivateTest\n";
  absl::StatusOr<Fer2013Csv> csv = ParseFer2013Csv(text, "fer.csv");
  ASSERT_TRUE(csv.ok()) << csv.status();
  ASSERT_EQ(csv->entries.size(), 3u);
  EXPECT_EQ(csv->entries[1].split, "val");
  EXPECT_EQ(csv->entries[1].path, "1.png");
  EXPECT_EQ(csv->entries[1].label, 3);
  EXPECT_EQ(csv->images[1].at<uint8_t>(0, 1), 8);
  EXPECT_EQ(csv->images[2].at<uint8_t>(47, 47), (9 + 2303) % 256);
  absl::StatusOr<Fer2013Csv> val = ParseFer2013Csv(text, "fer.csv", "val");
  ASSERT_TRUE(val.ok());
  ASSERT_EQ(val->entries.size(), 1u);
  EXPECT_EQ(val->entries[0].path, "1.png");  // row numbers count every split
}

TEST(Fer2013CsvTest, MalformedRowsNameFileAndLine) {
  for (const std::string& bad : std::vector<std::string>{"emotion,pixels,Usage\n9," + Pixels(0) + ",Training\n",
                                 "emotion,pixels,Usage\n1,1 2 3,Training\n",
                                 "emotion,pixels,Usage\n1," + Pixels(0) + ",Somewhere\n",
                                 "emotion,pixels,Usage\n1;" + Pixels(0) + "\n"}) {
    absl::StatusOr<Fer2013Csv> csv = ParseFer2013Csv(bad, "bad.csv");
    ASSERT_FALSE(csv.ok());
    EXPECT_NE(csv.status().message().find("bad.csv:2"), std::string::npos) << csv.status();
  }
  EXPECT_EQ(ReadFer2013Csv("/no/fer2013.csv").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dmue::datasets
