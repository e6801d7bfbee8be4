// Fuzz target: the serving request parser (serving/protocol.h), the server's
// path for untrusted inference requests over HTTP and gRPC.
//
// Every input goes to both parsers: ParseInferJson reads it as an Open
// Inference Protocol JSON body, and, when protobuf accepts the bytes as a
// KServe ModelInferRequest, ParseModelInferRequest reads that. An accepted
// request is then encoded both ways (JSON and ModelInferResponse, typed and
// raw) from synthetic results, so the encoders see every shape a parser lets
// through. The model has 3 classes and a 4x4 input, so a valid tensor is
// small. A refusal is the expected outcome; the target aborts only when a
// parser returned OK but broke its contract (a tensor whose element count is
// not its shape's, a batch outside 1..INT_MAX).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "serving/grpc/grpc_predict_v2.pb.h"
#include "serving/protocol.h"

namespace dmue::fuzz {
namespace {

using ::dmue::serving::InferRequest;
using ::dmue::serving::InferResult;
using ::dmue::serving::InputKind;
using ::dmue::serving::ModelMetadata;

const ModelMetadata& Model() {
  static const ModelMetadata* model = [] {
    auto* m = new ModelMetadata;
    m->name = "dmue";
    m->version = "1";
    m->platform = "fuzz";
    m->class_names = {"neutral", "happy", "sad"};
    m->input_size = 4;
    return m;
  }();
  return *model;
}

void CheckContract(const InferRequest& request) {
  if (request.kind != InputKind::kTensor) return;
  const int64_t S = Model().input_size;
  if (request.batch <= 0 || request.batch > std::numeric_limits<int>::max() ||
      static_cast<int64_t>(request.tensor.size()) != request.batch * 3 * S * S) {
    std::abort();
  }
}

// Encodes `request` with a result of its route's shape: one face per image
// request, uniform probabilities per tensor row.
void Encode(InferRequest request) {
  InferResult result;
  const size_t C = Model().class_names.size();
  if (request.kind == InputKind::kImage) {
    serving::FaceResult face;
    face.probabilities.assign(C, 1.f / C);
    face.top_class = static_cast<int>(request.image.size() % (C + 1)) - 1;  // -1 too: unlabelled
    result.analysis.result.faces.push_back(face);
  } else {
    result.probabilities.assign(static_cast<size_t>(request.batch) * C, 1.f / C);
  }
  result.request = std::move(request);
  (void)serving::InferResultJson(result, Model());
  for (const bool raw : {false, true}) {
    result.request.raw_contents = raw;
    inference::ModelInferResponse response;
    serving::FillModelInferResponse(result, Model(), &response);
  }
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs every string field that is not UTF-8: most mutants.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<dmue::serving::InferRequest> json = dmue::serving::ParseInferJson(bytes, dmue::fuzz::Model());
  if (json.ok()) {
    dmue::fuzz::CheckContract(*json);
    dmue::fuzz::Encode(*std::move(json));
  }
  inference::ModelInferRequest proto;
  if (proto.ParseFromArray(data, static_cast<int>(size))) {
    absl::StatusOr<dmue::serving::InferRequest> grpc = dmue::serving::ParseModelInferRequest(proto, dmue::fuzz::Model());
    if (grpc.ok()) {
      dmue::fuzz::CheckContract(*grpc);
      dmue::fuzz::Encode(*std::move(grpc));
    }
  }
  return 0;
}
