// Loads protobuf text-format config files with errors that name the file, the
// line and the offending field, so a typo in a config never passes silently.
#ifndef DMUE_CONFIG_TEXT_PROTO_H_
#define DMUE_CONFIG_TEXT_PROTO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/base/status_macros.h"
#include "google/protobuf/message.h"

namespace dmue {

// Parses `text` into `message`; `source` names the input in errors.
absl::Status ParseTextProto(absl::string_view text, absl::string_view source,
                            google::protobuf::Message* message);

// Merges `text` into `message` as protobuf's TextFormat merge does: singular
// fields given in `text` replace, repeated fields append. For command-line
// overrides of a config file.
absl::Status MergeTextProto(absl::string_view text, absl::string_view source,
                            google::protobuf::Message* message);

// Reads and parses the text-format file at `path`.
absl::Status ReadTextProtoFile(const std::string& path, google::protobuf::Message* message);

// Writes `message` in text format to `path` atomically (temp file + rename).
absl::Status WriteTextProtoFile(const std::string& path, const google::protobuf::Message& message);

template <typename T>
absl::StatusOr<T> LoadTextProto(const std::string& path) {
  T message;
  RETURN_IF_ERROR(ReadTextProtoFile(path, &message));
  return message;
}

}  // namespace dmue

#endif  // DMUE_CONFIG_TEXT_PROTO_H_
