// Test helper: paths under TEST_TMPDIR and whole-file reads and writes.
#ifndef DMUE_TESTING_FILES_H_
#define DMUE_TESTING_FILES_H_

#include <string>

namespace dmue::testing {

// <TEST_TMPDIR or /tmp>/<name>.
std::string TempPath(const std::string& name);
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);

}  // namespace dmue::testing

#endif  // DMUE_TESTING_FILES_H_
