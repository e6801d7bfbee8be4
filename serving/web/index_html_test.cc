#include "serving/web/index_html.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace dmue::serving::web {
namespace {

TEST(IndexHtmlTest, IsTheFileVerbatim) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  std::ifstream in(std::string(srcdir) + "/dmue_cpp/serving/web/index.html", std::ios::binary);
  ASSERT_TRUE(in) << "index.html not in the runfiles";
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_EQ(IndexHtml(), file.str());
}

TEST(IndexHtmlTest, IsASelfContainedPageWithTheTestHooks) {
  absl::string_view html = IndexHtml();
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>"));
  EXPECT_TRUE(absl::StrContains(html, "</html>"));
  EXPECT_TRUE(absl::StrContains(html, "/v1/faces"));
  for (const char* id : {"id=\"file-input\"", "id=\"skip-detection\"", "id=\"status\"", "id=\"error\"",
                         "id=\"canvas\"", "id=\"faces\"", "id=\"timings\""}) {
    EXPECT_TRUE(absl::StrContains(html, id)) << id;
  }
  // Offline: nothing loaded from elsewhere.
  EXPECT_FALSE(absl::StrContains(html, "http://")) << "external resource";
  EXPECT_FALSE(absl::StrContains(html, "https://")) << "external resource";
  EXPECT_FALSE(absl::StrContains(html, "src=\"//"));
}

}  // namespace
}  // namespace dmue::serving::web
