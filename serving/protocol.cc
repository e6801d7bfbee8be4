#include "serving/protocol.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/algorithm/container.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "dmue/base/json.h"
#include "dmue/base/status_macros.h"

namespace dmue::serving {
namespace {

using json = nlohmann::json;

// Raw tensor contents are little-endian; so is every machine this builds for.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "raw tensor contents assume a little-endian host");

constexpr absl::string_view kImageInput = "image";
constexpr absl::string_view kTensorInput = "input";

// The outputs each input's route gives, in reply order.
const std::vector<std::string>& RouteOutputs(InputKind kind) {
  static const auto* image = new std::vector<std::string>{"boxes", "scores", "landmarks", "probabilities", "labels"};
  static const auto* tensor = new std::vector<std::string>{"probabilities"};
  return kind == InputKind::kImage ? *image : *tensor;
}

absl::Status CheckRequestedOutputs(const InferRequest& request) {
  const std::vector<std::string>& known = RouteOutputs(request.kind);
  for (const std::string& name : request.outputs) {
    if (!absl::c_linear_search(known, name)) {
      return absl::InvalidArgumentError(absl::StrCat("requested output '", name, "' is not an output of input '",
                                                     request.kind == InputKind::kImage ? kImageInput : kTensorInput,
                                                     "' (it has ", absl::StrJoin(known, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------ JSON in

absl::StatusOr<std::string> StringMember(const json& object, const char* key, absl::string_view where) {
  const json* value = JsonMember(object, key);
  if (value == nullptr || !value->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": '", key, "' must be a string"));
  }
  return value->get<std::string>();
}

absl::StatusOr<std::vector<int64_t>> JsonShape(const json& tensor, absl::string_view where) {
  const json* shape = JsonMember(tensor, "shape");
  if (shape == nullptr || !shape->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": 'shape' must be an array of integers"));
  }
  std::vector<int64_t> dims;
  for (const json& d : *shape) {
    ASSIGN_OR_RETURN(int64_t dim, JsonInt64(d, absl::StrCat(where, ": shape")));
    dims.push_back(dim);
  }
  return dims;
}

// Flattens nested arrays of numbers (OIP allows both layouts); depth is
// bounded by kMaxJsonDepth. Values must fit an FP32.
absl::Status FlattenNumbers(const json& value, std::vector<float>* out, absl::string_view where) {
  if (value.is_number()) {
    const double v = value.get<double>();
    if (!std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", value.dump(), " is not a finite FP32"));
    }
    out->push_back(static_cast<float>(v));
    return absl::OkStatus();
  }
  if (!value.is_array()) return absl::InvalidArgumentError(absl::StrCat(where, ": 'data' must be numbers"));
  for (const json& v : value) RETURN_IF_ERROR(FlattenNumbers(v, out, where));
  return absl::OkStatus();
}

absl::Status ParseImageJson(const json& input, InferRequest* request) {
  constexpr absl::string_view kWhere = "input 'image'";
  ASSIGN_OR_RETURN(std::string datatype, StringMember(input, "datatype", kWhere));
  const json* data = JsonMember(input, "data");
  if (datatype != "BYTES" || data == nullptr || !data->is_array() || data->size() != 1 || !(*data)[0].is_string()) {
    return absl::InvalidArgumentError("input 'image' must be BYTES with one base64 string in 'data'");
  }
  if (!absl::Base64Unescape((*data)[0].get<std::string>(), &request->image)) {
    return absl::InvalidArgumentError("input 'image': data is not valid base64");
  }
  if (const json* parameters = JsonMember(input, "parameters")) {
    if (!parameters->is_object()) return absl::InvalidArgumentError("input 'image': 'parameters' must be an object");
    if (const json* skip = JsonMember(*parameters, "skip_detection")) {
      if (!skip->is_boolean()) {
        return absl::InvalidArgumentError("input 'image': parameters.skip_detection must be true or false");
      }
      request->skip_detection = skip->get<bool>();
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTensorJson(const json& input, int input_size, InferRequest* request) {
  constexpr absl::string_view kWhere = "input 'input'";
  ASSIGN_OR_RETURN(std::string datatype, StringMember(input, "datatype", kWhere));
  if (datatype != "FP32") return absl::InvalidArgumentError("input 'input' must be FP32");
  ASSIGN_OR_RETURN(std::vector<int64_t> shape, JsonShape(input, kWhere));
  // The shape first: a wrong one is refused before the data is walked.
  RETURN_IF_ERROR(CheckTensorShape(shape, -1, input_size, kWhere));
  const json* data = JsonMember(input, "data");
  if (data == nullptr) return absl::InvalidArgumentError("input 'input': 'data' is missing");
  RETURN_IF_ERROR(FlattenNumbers(*data, &request->tensor, kWhere));
  RETURN_IF_ERROR(CheckTensorShape(shape, static_cast<int64_t>(request->tensor.size()), input_size, kWhere));
  request->batch = shape[0];
  return absl::OkStatus();
}

absl::Status ParseRequestedOutputsJson(const json& body, InferRequest* request) {
  const json* outputs = JsonMember(body, "outputs");
  if (outputs == nullptr) return absl::OkStatus();
  if (!outputs->is_array()) return absl::InvalidArgumentError("'outputs' must be an array of {\"name\": ...}");
  for (const json& output : *outputs) {
    if (!output.is_object()) return absl::InvalidArgumentError("'outputs' must be an array of {\"name\": ...}");
    ASSIGN_OR_RETURN(std::string name, StringMember(output, "name", "requested output"));
    request->outputs.push_back(std::move(name));
  }
  return CheckRequestedOutputs(*request);
}

// ------------------------------------------------------------- gRPC in

// The elements of a raw BYTES tensor: each a 4-byte little-endian length,
// then that many bytes.
absl::StatusOr<std::vector<absl::string_view>> SplitRawBytes(absl::string_view raw, absl::string_view where) {
  std::vector<absl::string_view> elements;
  while (!raw.empty()) {
    uint32_t length = 0;
    if (raw.size() < sizeof(length)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": raw BYTES contents end inside an element length"));
    }
    std::memcpy(&length, raw.data(), sizeof(length));
    raw.remove_prefix(sizeof(length));
    if (length > raw.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": raw BYTES element of ", length, " bytes, only ",
                                                     raw.size(), " left"));
    }
    elements.push_back(raw.substr(0, length));
    raw.remove_prefix(length);
  }
  return elements;
}

absl::StatusOr<bool> BoolParameter(const inference::InferParameter& p, absl::string_view where) {
  if (p.parameter_choice_case() == inference::InferParameter::kBoolParam) return p.bool_param();
  if (p.parameter_choice_case() == inference::InferParameter::kStringParam &&
      (p.string_param() == "true" || p.string_param() == "false")) {
    return p.string_param() == "true";
  }
  return absl::InvalidArgumentError(absl::StrCat(where, " must be a bool_param (or \"true\" / \"false\")"));
}

absl::Status ParseImageGrpc(const inference::ModelInferRequest::InferInputTensor& input, const std::string* raw,
                            InferRequest* request) {
  constexpr absl::string_view kWhere = "input 'image'";
  if (input.datatype() != "BYTES") {
    return absl::InvalidArgumentError(absl::StrCat("input 'image' must be BYTES, not '", input.datatype(), "'"));
  }
  if (!absl::c_all_of(input.shape(), [](int64_t d) { return d == 1; })) {
    return absl::InvalidArgumentError("input 'image': shape must hold one element ([1]): one photo per request");
  }
  if (raw != nullptr) {
    ASSIGN_OR_RETURN(std::vector<absl::string_view> photos, SplitRawBytes(*raw, kWhere));
    if (photos.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(kWhere, ": raw contents hold ", photos.size(),
                                                     " elements, expected one photo"));
    }
    request->image = std::string(photos[0]);
  } else {
    if (input.contents().bytes_contents_size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(kWhere, ": contents.bytes_contents holds ",
                                                     input.contents().bytes_contents_size(),
                                                     " elements, expected one photo"));
    }
    request->image = input.contents().bytes_contents(0);
  }
  if (const auto it = input.parameters().find("skip_detection"); it != input.parameters().end()) {
    ASSIGN_OR_RETURN(request->skip_detection, BoolParameter(it->second, "input 'image': parameter skip_detection"));
  }
  return absl::OkStatus();
}

absl::Status ParseTensorGrpc(const inference::ModelInferRequest::InferInputTensor& input, const std::string* raw,
                             int input_size, InferRequest* request) {
  constexpr absl::string_view kWhere = "input 'input'";
  if (input.datatype() != "FP32") {
    return absl::InvalidArgumentError(absl::StrCat("input 'input' must be FP32, not '", input.datatype(), "'"));
  }
  const std::vector<int64_t> shape(input.shape().begin(), input.shape().end());
  RETURN_IF_ERROR(CheckTensorShape(shape, -1, input_size, kWhere));
  if (raw != nullptr) {
    if (raw->size() % sizeof(float) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(kWhere, ": raw contents of ", raw->size(),
                                                     " bytes are not whole FP32 values"));
    }
    RETURN_IF_ERROR(CheckTensorShape(shape, static_cast<int64_t>(raw->size() / sizeof(float)), input_size, kWhere));
    request->tensor.resize(raw->size() / sizeof(float));
    std::memcpy(request->tensor.data(), raw->data(), raw->size());
  } else {
    const auto& values = input.contents().fp32_contents();
    RETURN_IF_ERROR(CheckTensorShape(shape, values.size(), input_size, kWhere));
    request->tensor.assign(values.begin(), values.end());
  }
  request->batch = shape[0];
  return absl::OkStatus();
}

// ------------------------------------------------------------------ out

// One output tensor, before a transport encodes it.
struct OutputTensor {
  std::string name, datatype;
  std::vector<int64_t> shape;
  std::vector<float> fp32;
  std::vector<std::string> bytes;
};

std::vector<OutputTensor> ImageOutputs(const AnalyzeResult& result, const ModelMetadata& m) {
  const int64_t F = static_cast<int64_t>(result.faces.size());
  const int64_t C = static_cast<int64_t>(m.class_names.size());
  OutputTensor boxes{"boxes", "FP32", {F, 4}}, scores{"scores", "FP32", {F}},
      landmarks{"landmarks", "FP32", {F, 5, 2}}, probabilities{"probabilities", "FP32", {F, C}},
      labels{"labels", "BYTES", {F}};
  for (const FaceResult& f : result.faces) {
    boxes.fp32.insert(boxes.fp32.end(), f.box.begin(), f.box.end());
    scores.fp32.push_back(f.score);
    for (const auto& p : f.landmarks) landmarks.fp32.insert(landmarks.fp32.end(), p.begin(), p.end());
    probabilities.fp32.insert(probabilities.fp32.end(), f.probabilities.begin(), f.probabilities.end());
    labels.bytes.push_back(f.top_class >= 0 && f.top_class < C ? m.class_names[f.top_class] : "");
  }
  return {std::move(boxes), std::move(scores), std::move(landmarks), std::move(probabilities), std::move(labels)};
}

// The outputs of `result` the request asked for, in the route's order.
std::vector<OutputTensor> Outputs(const InferResult& result, const ModelMetadata& m) {
  std::vector<OutputTensor> all;
  if (result.request.kind == InputKind::kImage) {
    all = ImageOutputs(result.analysis.result, m);
  } else {
    const int64_t n = result.request.batch;
    all.push_back({"probabilities", "FP32", {n, static_cast<int64_t>(m.class_names.size())}, result.probabilities});
  }
  const std::vector<std::string>& wanted = result.request.outputs;
  if (wanted.empty()) return all;
  std::vector<OutputTensor> kept;
  for (OutputTensor& t : all) {
    if (absl::c_linear_search(wanted, t.name)) kept.push_back(std::move(t));
  }
  return kept;
}

json TensorSpecJson(const TensorSpec& t) {
  return json{{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}};
}

json FaceJson(const FaceResult& face, const ModelMetadata& metadata) {
  json probabilities = json::object();
  for (size_t c = 0; c < face.probabilities.size() && c < metadata.class_names.size(); ++c) {
    probabilities[metadata.class_names[c]] = face.probabilities[c];
  }
  json landmarks = json::array();
  for (const auto& p : face.landmarks) landmarks.push_back({p[0], p[1]});
  const bool labelled = face.top_class >= 0 && face.top_class < static_cast<int>(metadata.class_names.size());
  return json{{"box", {face.box[0], face.box[1], face.box[2], face.box[3]}},
              {"score", face.score},
              {"landmarks", landmarks},
              {"probabilities", probabilities},
              {"label", labelled ? metadata.class_names[face.top_class] : ""},
              {"label_index", face.top_class}};
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

}  // namespace

// ------------------------------------------------------------ status codes

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

int GrpcCodeFor(const absl::Status& status) {
  // absl::StatusCode is defined as gRPC's code numbers (0 OK .. 16
  // UNAUTHENTICATED); anything else is UNKNOWN.
  const int code = static_cast<int>(status.code());
  return code >= 0 && code <= 16 ? code : static_cast<int>(absl::StatusCode::kUnknown);
}

// ---------------------------------------------------------------- metadata

ModelDescription DescribeModel(const ModelMetadata& m) {
  const int64_t S = m.input_size;
  const int64_t C = static_cast<int64_t>(m.class_names.size());
  ModelDescription d{m.name, m.version, m.platform, m.class_names, m.input_size};
  d.inputs = {{std::string(kImageInput), "BYTES", {-1}}, {std::string(kTensorInput), "FP32", {-1, 3, S, S}}};
  d.outputs = {{"probabilities", "FP32", {-1, C}},
               {"boxes", "FP32", {-1, 4}},
               {"scores", "FP32", {-1}},
               {"landmarks", "FP32", {-1, 5, 2}},
               {"labels", "BYTES", {-1}}};
  return d;
}

absl::Status CheckModel(const ModelMetadata& m, absl::string_view name, absl::string_view version) {
  if (!name.empty() && name != m.name) {
    return absl::NotFoundError(absl::StrCat("unknown model '", name, "' (serving '", m.name, "')"));
  }
  if (!version.empty() && version != m.version) {
    return absl::NotFoundError(
        absl::StrCat("unknown version '", version, "' of model '", m.name, "' (serving '", m.version, "')"));
  }
  return absl::OkStatus();
}

std::string ServerMetadataJson() {
  return json{{"name", kServerName}, {"version", kServerVersion}, {"extensions", json::array()}}.dump();
}

std::string ModelMetadataJson(const ModelDescription& model) {
  json inputs = json::array(), outputs = json::array();
  for (const TensorSpec& t : model.inputs) inputs.push_back(TensorSpecJson(t));
  for (const TensorSpec& t : model.outputs) outputs.push_back(TensorSpecJson(t));
  return json{{"name", model.name},
              {"versions", {model.version}},
              {"platform", model.platform},
              {"inputs", inputs},
              {"outputs", outputs},
              {"parameters", {{"classes", model.class_names}, {"input_size", model.input_size}}}}
      .dump();
}

// ------------------------------------------------------------------ infer

absl::Status CheckTensorShape(const std::vector<int64_t>& shape, int64_t values, int input_size,
                              absl::string_view source) {
  const int64_t S = input_size;
  auto render = [&shape] { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); };
  if (shape.size() != 4 || shape[0] <= 0 || shape[1] != 3 || shape[2] != S || shape[3] != S) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": shape must be [N, 3, ", S, ", ", S, "], got ", render()));
  }
  // In int64: a batch of 2^31 must not wrap to a small int.
  if (shape[0] > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": batch ", shape[0], " is beyond ",
                                                   std::numeric_limits<int>::max()));
  }
  const int64_t needed = shape[0] * 3 * S * S;
  if (values >= 0 && values != needed) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": shape ", render(), " needs ", shape[0], " x 3 x ", S,
                                                   " x ", S, " = ", needed, " values, the data has ", values));
  }
  return absl::OkStatus();
}

absl::StatusOr<InferRequest> ParseInferJson(absl::string_view body, const ModelMetadata& metadata) {
  ASSIGN_OR_RETURN(const json parsed, ParseBoundedJson(body, kMaxJsonDepth, "request body"));
  if (!parsed.is_object()) return absl::InvalidArgumentError("request body is not a JSON object");
  InferRequest request;
  if (const json* id = JsonMember(parsed, "id")) {
    if (!id->is_string()) return absl::InvalidArgumentError("'id' must be a string");
    request.id = id->get<std::string>();
  }
  const json* inputs = JsonMember(parsed, "inputs");
  if (inputs == nullptr || !inputs->is_array() || inputs->size() != 1 || !(*inputs)[0].is_object()) {
    return absl::InvalidArgumentError("'inputs' must be an array with one tensor ('image' or 'input')");
  }
  const json& input = (*inputs)[0];
  ASSIGN_OR_RETURN(const std::string name, StringMember(input, "name", "input"));
  if (name == kImageInput) {
    request.kind = InputKind::kImage;
    RETURN_IF_ERROR(ParseImageJson(input, &request));
  } else if (name == kTensorInput) {
    request.kind = InputKind::kTensor;
    RETURN_IF_ERROR(ParseTensorJson(input, metadata.input_size, &request));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown input '", name, "' (expected 'image' or 'input')"));
  }
  RETURN_IF_ERROR(ParseRequestedOutputsJson(parsed, &request));
  return request;
}

absl::StatusOr<InferRequest> ParseModelInferRequest(const inference::ModelInferRequest& in,
                                                    const ModelMetadata& metadata) {
  RETURN_IF_ERROR(CheckModel(metadata, in.model_name(), in.model_version()));
  if (in.inputs_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("ModelInferRequest.inputs holds ", in.inputs_size(),
                                                   " tensors, expected one ('image' or 'input')"));
  }
  const auto& input = in.inputs(0);
  const std::string* raw = nullptr;
  if (in.raw_input_contents_size() > 0) {
    if (in.raw_input_contents_size() != 1 || input.has_contents()) {
      return absl::InvalidArgumentError(
          "ModelInferRequest: give the input's data either in raw_input_contents (one entry) or in its contents, "
          "not both");
    }
    raw = &in.raw_input_contents(0);
  }
  InferRequest request;
  request.model_name = in.model_name();
  request.model_version = in.model_version();
  request.id = in.id();
  request.raw_contents = raw != nullptr;
  if (input.name() == kImageInput) {
    request.kind = InputKind::kImage;
    RETURN_IF_ERROR(ParseImageGrpc(input, raw, &request));
  } else if (input.name() == kTensorInput) {
    request.kind = InputKind::kTensor;
    RETURN_IF_ERROR(ParseTensorGrpc(input, raw, metadata.input_size, &request));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown input '", input.name(), "' (expected 'image' or 'input')"));
  }
  for (const auto& output : in.outputs()) request.outputs.push_back(output.name());
  RETURN_IF_ERROR(CheckRequestedOutputs(request));
  return request;
}

absl::StatusOr<TimedAnalysis> AnalyzeTimed(ExpressionService& service, absl::string_view image,
                                           const AnalyzeOptions& options, absl::string_view source) {
  const absl::Time start = absl::Now();
  TimedAnalysis timed;
  ASSIGN_OR_RETURN(timed.result, service.Analyze(image, options, source));
  timed.total_ms = Ms(absl::Now() - start);
  return timed;
}

absl::StatusOr<InferResult> RunInfer(ExpressionService& service, InferRequest request) {
  InferResult result;
  if (request.kind == InputKind::kImage) {
    AnalyzeOptions options;
    options.skip_detection = request.skip_detection;
    ASSIGN_OR_RETURN(result.analysis, AnalyzeTimed(service, request.image, options, "input 'image'"));
  } else {
    ASSIGN_OR_RETURN(result.probabilities, service.ClassifyTensors(request.tensor, static_cast<int>(request.batch)));
  }
  // The reply needs only the request's names; the inputs may be megabytes.
  request.image = std::string();
  request.tensor = std::vector<float>();
  result.request = std::move(request);
  return result;
}

std::string InferResultJson(const InferResult& result, const ModelMetadata& metadata) {
  json outputs = json::array();
  for (const OutputTensor& t : Outputs(result, metadata)) {
    json data = t.datatype == "BYTES" ? json(t.bytes) : json(t.fp32);
    outputs.push_back(json{{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}, {"data", std::move(data)}});
  }
  json reply{{"model_name", metadata.name}, {"model_version", metadata.version}, {"outputs", std::move(outputs)}};
  if (!result.request.id.empty()) reply["id"] = result.request.id;
  return reply.dump();
}

void FillModelInferResponse(const InferResult& result, const ModelMetadata& metadata,
                            inference::ModelInferResponse* response) {
  response->set_model_name(metadata.name);
  response->set_model_version(metadata.version);
  response->set_id(result.request.id);
  for (const OutputTensor& t : Outputs(result, metadata)) {
    auto* out = response->add_outputs();
    out->set_name(t.name);
    out->set_datatype(t.datatype);
    for (int64_t d : t.shape) out->add_shape(d);
    if (result.request.raw_contents) {
      std::string* raw = response->add_raw_output_contents();
      if (t.datatype == "BYTES") {
        for (const std::string& s : t.bytes) {
          const uint32_t length = static_cast<uint32_t>(s.size());
          raw->append(reinterpret_cast<const char*>(&length), sizeof(length));
          raw->append(s);
        }
      } else {
        raw->assign(reinterpret_cast<const char*>(t.fp32.data()), t.fp32.size() * sizeof(float));
      }
    } else if (t.datatype == "BYTES") {
      for (const std::string& s : t.bytes) out->mutable_contents()->add_bytes_contents(s);
    } else {
      out->mutable_contents()->mutable_fp32_contents()->Add(t.fp32.begin(), t.fp32.end());
    }
  }
}

// ------------------------------------------------------------- /v1/faces

std::string FacesJson(const TimedAnalysis& analysis, const ModelMetadata& metadata) {
  const AnalyzeResult& result = analysis.result;
  json faces = json::array();
  for (const FaceResult& face : result.faces) faces.push_back(FaceJson(face, metadata));
  return json{{"model", metadata.name},
              {"width", result.width},
              {"height", result.height},
              {"classes", metadata.class_names},
              {"faces", faces},
              {"faces_dropped", result.faces_dropped},
              {"timing_ms",
               {{"decode", result.decode_ms},
                {"detect", result.detect_ms},
                {"classify", result.classify_ms},
                {"total", analysis.total_ms}}}}
      .dump();
}

}  // namespace dmue::serving
