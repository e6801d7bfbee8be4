// The serving protocol layer, shared by the HTTP and gRPC front ends (no
// sockets, no torch): parse and validate Open Inference Protocol (KServe v2)
// infer requests, from their JSON body or from the KServe gRPC
// ModelInferRequest, into one transport-neutral InferRequest; run it against
// an ExpressionService; encode the InferResult as JSON or as a
// ModelInferResponse. Also the one model-metadata definition, our /v1/faces
// JSON, the one wall-time "total", and the one Status -> HTTP / gRPC code
// mapping.
//
//   ASSIGN_OR_RETURN(InferRequest request, ParseInferJson(body, metadata));
//   ASSIGN_OR_RETURN(InferResult result, RunInfer(service, request));
//   reply_body = InferResultJson(result, metadata);
//
// Every error is an absl::Status naming the offending field; its code picks
// the reply (HttpStatusFor, GrpcCodeFor).
#ifndef SERVING_PROTOCOL_H_
#define SERVING_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "serving/expression_service.h"
#include "serving/grpc/grpc_predict_v2.pb.h"

namespace dmue::serving {

// ------------------------------------------------------------ status codes

// The HTTP status of an absl status (InvalidArgument 400, NotFound 404,
// ResourceExhausted 413, Unavailable 503, ...).
int HttpStatusFor(const absl::Status& status);

// The gRPC code (as its number) of an absl status: absl's codes are gRPC's,
// so InvalidArgument -> INVALID_ARGUMENT (3) and so on.
int GrpcCodeFor(const absl::Status& status);

// ---------------------------------------------------------------- metadata

// Nesting deeper than this is refused while a JSON body is parsed (nothing
// deeper is ever built, so no walk over it can exhaust the stack).
inline constexpr int kMaxJsonDepth = 32;

struct TensorSpec {
  std::string name, datatype;
  std::vector<int64_t> shape;  // -1: any size
};

// What the served model takes and gives, for every transport.
struct ModelDescription {
  std::string name, version, platform;
  std::vector<std::string> class_names;
  int input_size = 0;
  // "image" BYTES [-1] and "input" FP32 [-1, 3, S, S].
  std::vector<TensorSpec> inputs;
  // boxes, scores, landmarks, probabilities, labels.
  std::vector<TensorSpec> outputs;
};
ModelDescription DescribeModel(const ModelMetadata& metadata);

// The server's own name and version (GET /v2, ServerMetadata).
inline constexpr absl::string_view kServerName = "dmue-server";
inline constexpr absl::string_view kServerVersion = "1";

// NotFound unless `name` (and `version`, when not empty) is the served model;
// an empty name is accepted where a transport allows it (gRPC).
absl::Status CheckModel(const ModelMetadata& metadata, absl::string_view name, absl::string_view version);

std::string ServerMetadataJson();
std::string ModelMetadataJson(const ModelDescription& model);
// Fills a ModelMetadataResponse: KServe's (inference::) or ours
// (dmue::serving::grpc::), which share the KServe field names.
template <typename Response>
void FillModelMetadata(const ModelDescription& model, Response* response) {
  response->set_name(model.name);
  response->add_versions(model.version);
  response->set_platform(model.platform);
  auto fill = [](const TensorSpec& t, auto* out) {
    out->set_name(t.name);
    out->set_datatype(t.datatype);
    for (int64_t d : t.shape) out->add_shape(d);
  };
  for (const TensorSpec& t : model.inputs) fill(t, response->add_inputs());
  for (const TensorSpec& t : model.outputs) fill(t, response->add_outputs());
}

// ------------------------------------------------------------------ infer

enum class InputKind { kImage, kTensor };

// One infer request, whatever carried it.
struct InferRequest {
  std::string model_name, model_version, id;
  InputKind kind = InputKind::kImage;
  // kImage: the photo's bytes.
  std::string image;
  bool skip_detection = false;
  // kTensor: batch x 3 x S x S normalised floats.
  std::vector<float> tensor;
  int64_t batch = 0;
  // Names of the outputs asked for; empty: all of the input's route.
  std::vector<std::string> outputs;
  // gRPC: the request sent raw_input_contents, so the reply uses raw too.
  bool raw_contents = false;
};

// The OIP JSON body of POST /v2/models/<name>/infer (model name and version
// come from the path, not the body). `metadata` gives the tensor size S.
absl::StatusOr<InferRequest> ParseInferJson(absl::string_view body, const ModelMetadata& metadata);

// A KServe gRPC ModelInferRequest (the model is checked: NotFound).
absl::StatusOr<InferRequest> ParseModelInferRequest(const inference::ModelInferRequest& request,
                                                    const ModelMetadata& metadata);

// InvalidArgument unless `shape` is [N, 3, S, S] with N in 1..INT_MAX and
// `values` elements (products in int64). `source` names the tensor.
absl::Status CheckTensorShape(const std::vector<int64_t>& shape, int64_t values, int input_size,
                              absl::string_view source);

// A photo analysed, timed as a whole (wall time: decode, queue, model).
struct TimedAnalysis {
  AnalyzeResult result;
  double total_ms = 0;
};
absl::StatusOr<TimedAnalysis> AnalyzeTimed(ExpressionService& service, absl::string_view image,
                                           const AnalyzeOptions& options, absl::string_view source);

struct InferResult {
  InferRequest request;  // its image and tensor are released after the run
  TimedAnalysis analysis;  // kImage
  std::vector<float> probabilities;  // kTensor: batch x C
};
absl::StatusOr<InferResult> RunInfer(ExpressionService& service, InferRequest request);

std::string InferResultJson(const InferResult& result, const ModelMetadata& metadata);
void FillModelInferResponse(const InferResult& result, const ModelMetadata& metadata,
                            inference::ModelInferResponse* response);

// ------------------------------------------------------------- /v1/faces

// {"model","width","height","classes","faces":[...],"faces_dropped",
//  "timing_ms":{"decode","detect","classify","total"}}; total is wall time.
std::string FacesJson(const TimedAnalysis& analysis, const ModelMetadata& metadata);

}  // namespace dmue::serving

#endif  // SERVING_PROTOCOL_H_
