#include "dmue/config/text_proto.h"

#include "dmue/base/files.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace dmue {
namespace {

class CollectingErrorPrinter : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

namespace {

absl::Status ParseOrMerge(absl::string_view text, absl::string_view source, bool merge,
                          google::protobuf::Message* message) {
  google::protobuf::TextFormat::Parser parser;
  CollectingErrorPrinter errors;
  parser.RecordErrorsTo(&errors);
  const bool ok = merge ? parser.MergeFromString(std::string(text), message)
                        : parser.ParseFromString(std::string(text), message);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", message->GetTypeName(),
                                                   " in ", source, ": ", errors.Joined()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseTextProto(absl::string_view text, absl::string_view source,
                            google::protobuf::Message* message) {
  return ParseOrMerge(text, source, /*merge=*/false, message);
}

absl::Status MergeTextProto(absl::string_view text, absl::string_view source,
                            google::protobuf::Message* message) {
  return ParseOrMerge(text, source, /*merge=*/true, message);
}

absl::Status ReadTextProtoFile(const std::string& path, google::protobuf::Message* message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open config file '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read config file '", path, "'"));
  return ParseTextProto(buffer.str(), path, message);
}

absl::Status WriteTextProtoFile(const std::string& path, const google::protobuf::Message& message) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(message, &text)) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetTypeName()));
  }
  return WriteFileAtomically(path, text);
}

}  // namespace dmue
