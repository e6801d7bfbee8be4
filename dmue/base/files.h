// Whole-file reads within a byte limit, and crash-safe file writes: the one
// place that writes a file so that readers see the old content or the new,
// never a torn mix, even after kill -9 or a power cut. The data goes to a temp
// file with a name unique to this write (two writers of one path never share
// a temp), is fsynced, renamed over the target, and the directory is fsynced
// so the rename itself is durable.
#ifndef DMUE_BASE_FILES_H_
#define DMUE_BASE_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue {

// `<path>.tmp.<pid>.<n>`: unique per process and call.
std::string UniqueTempPath(const std::string& path);

// Writes `contents` to `path` atomically and durably (see above). Errors name
// the path; on failure the temp file is removed and `path` is untouched.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// For writers that fill the temp file themselves (zip, image encoders): fsyncs
// `temp_path`, renames it to `path`, fsyncs the directory. Removes the temp
// file on failure.
absl::Status CommitTempFile(const std::string& temp_path, const std::string& path);

// Reads the whole regular file at `path`, refusing one over `max_bytes` before
// reading it (untrusted inputs: images, weight shards). NotFound when it cannot
// be opened, InvalidArgument for a directory or device, ResourceExhausted over
// the limit, DataLoss on a short read; messages name the path.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path, int64_t max_bytes);

}  // namespace dmue

#endif  // DMUE_BASE_FILES_H_
