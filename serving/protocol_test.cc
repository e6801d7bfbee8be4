// The protocol layer without sockets: JSON and KServe gRPC requests parsed
// into one InferRequest, validated the same way, run against a fake service
// and encoded; one metadata definition; one Status -> code mapping.
#include "serving/protocol.h"

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "serving/grpc/grpc_predict_v2.pb.h"
#include "serving/testing/fake_expression_service.h"

namespace dmue::serving {
namespace {

using json = nlohmann::json;
using testing::FakeExpressionService;
using testing::FakeFace;

constexpr int kS = 4;  // the fake model's input side

std::string TensorJson(const std::string& shape, const std::string& data) {
  return absl::StrCat(R"({"inputs":[{"name":"input","datatype":"FP32","shape":)", shape, R"(,"data":)", data,
                      "}]}");
}

std::string Zeros(int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, i ? ",0" : "0");
  return out + "]";
}

TEST(StatusCodesTest, HttpAndGrpcCodesComeFromOneMapping) {
  EXPECT_EQ(HttpStatusFor(absl::OkStatus()), 200);
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("x")), 413);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  EXPECT_EQ(GrpcCodeFor(absl::OkStatus()), 0);
  EXPECT_EQ(GrpcCodeFor(absl::InvalidArgumentError("x")), 3);   // INVALID_ARGUMENT
  EXPECT_EQ(GrpcCodeFor(absl::NotFoundError("x")), 5);          // NOT_FOUND
  EXPECT_EQ(GrpcCodeFor(absl::ResourceExhaustedError("x")), 8);  // RESOURCE_EXHAUSTED
  EXPECT_EQ(GrpcCodeFor(absl::UnavailableError("x")), 14);       // UNAVAILABLE
}

TEST(MetadataTest, OneDefinitionForJsonAndKServe) {
  FakeExpressionService service;
  const ModelDescription model = DescribeModel(service.metadata());
  ASSERT_EQ(model.inputs.size(), 2u);
  ASSERT_EQ(model.outputs.size(), 5u);
  EXPECT_EQ(model.inputs[0].name, "image");
  EXPECT_EQ(model.inputs[1].shape, (std::vector<int64_t>{-1, 3, kS, kS}));
  EXPECT_EQ(model.outputs[0].shape, (std::vector<int64_t>{-1, 3}));

  const json j = json::parse(ModelMetadataJson(model));
  inference::ModelMetadataResponse kserve;
  FillModelMetadata(model, &kserve);
  ASSERT_EQ(j["inputs"].size(), static_cast<size_t>(kserve.inputs_size()));
  ASSERT_EQ(j["outputs"].size(), static_cast<size_t>(kserve.outputs_size()));
  for (int i = 0; i < kserve.outputs_size(); ++i) {
    EXPECT_EQ(j["outputs"][i]["name"], kserve.outputs(i).name());
    EXPECT_EQ(j["outputs"][i]["datatype"], kserve.outputs(i).datatype());
    EXPECT_EQ(j["outputs"][i]["shape"].get<std::vector<int64_t>>(),
              std::vector<int64_t>(kserve.outputs(i).shape().begin(), kserve.outputs(i).shape().end()));
  }
  EXPECT_EQ(kserve.name(), "dmue");
  EXPECT_EQ(j["parameters"]["classes"].size(), 3u);
}

TEST(CheckModelTest, NameAndVersion) {
  FakeExpressionService service;
  EXPECT_TRUE(CheckModel(service.metadata(), "dmue", "1").ok());
  EXPECT_TRUE(CheckModel(service.metadata(), "", "").ok());
  EXPECT_EQ(CheckModel(service.metadata(), "other", "").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CheckModel(service.metadata(), "dmue", "7").code(), absl::StatusCode::kNotFound);
}

TEST(ParseInferJsonTest, ImageWithParametersAndRequestedOutputs) {
  FakeExpressionService service;
  const std::string body = json{{"id", "r1"},
                                {"inputs",
                                 {{{"name", "image"},
                                   {"datatype", "BYTES"},
                                   {"shape", {1}},
                                   {"parameters", {{"skip_detection", true}}},
                                   {"data", {absl::Base64Escape("photo bytes")}}}}},
                                {"outputs", {{{"name", "labels"}}}}}
                               .dump();
  absl::StatusOr<InferRequest> request = ParseInferJson(body, service.metadata());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->kind, InputKind::kImage);
  EXPECT_EQ(request->image, "photo bytes");
  EXPECT_TRUE(request->skip_detection);
  EXPECT_EQ(request->id, "r1");
  EXPECT_EQ(request->outputs, std::vector<std::string>{"labels"});
}

TEST(ParseInferJsonTest, TensorNestedOrFlat) {
  FakeExpressionService service;
  const int n = 2 * 3 * kS * kS;
  absl::StatusOr<InferRequest> flat = ParseInferJson(TensorJson("[2,3,4,4]", Zeros(n)), service.metadata());
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_EQ(flat->batch, 2);
  EXPECT_EQ(flat->tensor.size(), static_cast<size_t>(n));
  const std::string nested = absl::StrCat("[", Zeros(n / 2), ",", Zeros(n / 2), "]");
  absl::StatusOr<InferRequest> rows = ParseInferJson(TensorJson("[2,3,4,4]", nested), service.metadata());
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->tensor.size(), static_cast<size_t>(n));
}

TEST(ParseInferJsonTest, BadRequestsAreInvalidArgumentNamingTheField) {
  FakeExpressionService service;
  struct Case {
    std::string what, body, message;
  };
  const std::vector<Case> cases = {
      {"not JSON", "{\"inputs\": [", "not valid JSON"},
      {"not an object", "[1]", "not a JSON object"},
      {"no inputs", "{\"x\": 1}", "'inputs'"},
      {"two inputs", R"({"inputs":[{},{}]})", "'inputs'"},
      {"name of the wrong type", R"({"inputs":[{"name":7}]})", "'name' must be a string"},
      {"id of the wrong type", R"({"id":3,"inputs":[]})", "'id'"},
      {"unknown input", R"({"inputs":[{"name":"x"}]})", "unknown input 'x'"},
      {"bad base64", R"({"inputs":[{"name":"image","datatype":"BYTES","data":["@@@"]}]})", "base64"},
      {"image not BYTES", R"({"inputs":[{"name":"image","datatype":"FP32","data":["aa"]}]})", "BYTES"},
      {"skip_detection not a bool",
       R"({"inputs":[{"name":"image","datatype":"BYTES","data":["aa"],"parameters":{"skip_detection":"yes"}}]})",
       "skip_detection"},
      {"wrong shape", TensorJson("[1,3,8,8]", "[0]"), "shape must be [N, 3, 4, 4]"},
      {"batch beyond int", TensorJson("[4294967297,3,4,4]", "[0]"), "beyond"},
      {"dimension beyond int64", TensorJson("[18446744073709551615,3,4,4]", "[0]"), "beyond int64"},
      {"shape not integers", TensorJson("[1.5,3,4,4]", "[0]"), "not an integer"},
      {"too few values", TensorJson("[1,3,4,4]", "[0,1]"), "needs 1 x 3 x 4 x 4 = 48 values"},
      {"a string in the data", TensorJson("[1,3,4,4]", "[\"a\"]"), "'data' must be numbers"},
      {"a value beyond FP32", TensorJson("[1,3,4,4]", "[1e300]"), "finite FP32"},
      {"too deep", std::string(100, '[') + std::string(100, ']'), "deeper than 32"},
      {"unknown requested output", absl::StrCat(R"({"outputs":[{"name":"boxes"}],)", TensorJson("[1,3,4,4]", Zeros(48)).substr(1)),
       "'boxes' is not an output of input 'input'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<InferRequest> request = ParseInferJson(c.body, service.metadata());
    ASSERT_FALSE(request.ok()) << c.what;
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(request.status().message().find(c.message), std::string::npos)
        << c.what << ": " << request.status().message();
  }
}

inference::ModelInferRequest TensorGrpc(std::vector<int64_t> shape, int values, bool raw) {
  inference::ModelInferRequest request;
  request.set_model_name("dmue");
  auto* input = request.add_inputs();
  input->set_name("input");
  input->set_datatype("FP32");
  for (int64_t d : shape) input->add_shape(d);
  std::vector<float> data(values);
  for (int i = 0; i < values; ++i) data[i] = 0.25f * i;
  if (raw) {
    request.add_raw_input_contents(std::string(reinterpret_cast<const char*>(data.data()), data.size() * 4));
  } else {
    input->mutable_contents()->mutable_fp32_contents()->Add(data.begin(), data.end());
  }
  return request;
}

TEST(ParseModelInferRequestTest, TensorInContentsOrRaw) {
  FakeExpressionService service;
  for (bool raw : {false, true}) {
    absl::StatusOr<InferRequest> request = ParseModelInferRequest(TensorGrpc({1, 3, 4, 4}, 48, raw), service.metadata());
    ASSERT_TRUE(request.ok()) << request.status();
    EXPECT_EQ(request->kind, InputKind::kTensor);
    EXPECT_EQ(request->batch, 1);
    ASSERT_EQ(request->tensor.size(), 48u);
    EXPECT_EQ(request->tensor[47], 0.25f * 47);
    EXPECT_EQ(request->raw_contents, raw);
  }
}

TEST(ParseModelInferRequestTest, ImageInBytesContentsOrRawWithLengthPrefix) {
  FakeExpressionService service;
  inference::ModelInferRequest request;
  auto* input = request.add_inputs();
  input->set_name("image");
  input->set_datatype("BYTES");
  input->add_shape(1);
  (*input->mutable_parameters())["skip_detection"].set_bool_param(true);
  input->mutable_contents()->add_bytes_contents("jpeg");
  absl::StatusOr<InferRequest> parsed = ParseModelInferRequest(request, service.metadata());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->image, "jpeg");
  EXPECT_TRUE(parsed->skip_detection);

  input->clear_contents();
  const uint32_t length = 4;
  request.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&length), 4) + "jpeg");
  parsed = ParseModelInferRequest(request, service.metadata());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->image, "jpeg");

  request.set_raw_input_contents(0, std::string(reinterpret_cast<const char*>(&length), 4) + "jp");
  EXPECT_EQ(ParseModelInferRequest(request, service.metadata()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseModelInferRequestTest, Errors) {
  FakeExpressionService service;
  inference::ModelInferRequest unknown = TensorGrpc({1, 3, 4, 4}, 48, false);
  unknown.set_model_name("nope");
  EXPECT_EQ(ParseModelInferRequest(unknown, service.metadata()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseModelInferRequest(TensorGrpc({1, 3, 5, 5}, 75, false), service.metadata()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelInferRequest(TensorGrpc({1, 3, 4, 4}, 47, true), service.metadata()).status().code(),
            absl::StatusCode::kInvalidArgument);
  inference::ModelInferRequest both = TensorGrpc({1, 3, 4, 4}, 48, true);
  both.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  EXPECT_EQ(ParseModelInferRequest(both, service.metadata()).status().code(), absl::StatusCode::kInvalidArgument);
  inference::ModelInferRequest none;
  EXPECT_EQ(ParseModelInferRequest(none, service.metadata()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RunInferTest, JsonAndGrpcGiveTheSameOutputs) {
  FakeExpressionService service;
  service.analyze_result.width = 200;
  service.analyze_result.height = 160;
  service.analyze_result.faces = {FakeFace({0.1f, 0.7f, 0.2f}), FakeFace({0.6f, 0.3f, 0.1f})};
  inference::ModelInferRequest grpc_request;
  grpc_request.set_id("g1");
  auto* input = grpc_request.add_inputs();
  input->set_name("image");
  input->set_datatype("BYTES");
  input->add_shape(1);
  input->mutable_contents()->add_bytes_contents("jpeg");
  absl::StatusOr<InferRequest> parsed = ParseModelInferRequest(grpc_request, service.metadata());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<InferResult> result = RunInfer(service, *parsed);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(service.last_image, "jpeg");
  EXPECT_EQ(service.last_source, "input 'image'");
  EXPECT_GE(result->analysis.total_ms, 0);

  inference::ModelInferResponse response;
  FillModelInferResponse(*result, service.metadata(), &response);
  const json j = json::parse(InferResultJson(*result, service.metadata()));
  EXPECT_EQ(response.id(), "g1");
  EXPECT_EQ(j["id"], "g1");
  ASSERT_EQ(response.outputs_size(), 5);
  ASSERT_EQ(j["outputs"].size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const auto& out = response.outputs(i);
    EXPECT_EQ(j["outputs"][i]["name"], out.name());
    EXPECT_EQ(j["outputs"][i]["shape"].get<std::vector<int64_t>>(),
              std::vector<int64_t>(out.shape().begin(), out.shape().end()));
    if (out.datatype() == "BYTES") {
      EXPECT_EQ(j["outputs"][i]["data"].get<std::vector<std::string>>(),
                std::vector<std::string>(out.contents().bytes_contents().begin(), out.contents().bytes_contents().end()));
    } else {
      EXPECT_EQ(j["outputs"][i]["data"].get<std::vector<float>>(),
                std::vector<float>(out.contents().fp32_contents().begin(), out.contents().fp32_contents().end()));
    }
  }
  EXPECT_EQ(response.outputs(4).name(), "labels");
  EXPECT_EQ(response.outputs(4).contents().bytes_contents(0), "happy");
  EXPECT_EQ(response.outputs(4).contents().bytes_contents(1), "neutral");
  EXPECT_EQ(response.outputs(0).shape(0), 2);
}

TEST(RunInferTest, RawRequestGetsRawOutputsAndRequestedOnly) {
  FakeExpressionService service;
  inference::ModelInferRequest request = TensorGrpc({2, 3, 4, 4}, 96, true);
  request.add_outputs()->set_name("probabilities");
  absl::StatusOr<InferRequest> parsed = ParseModelInferRequest(request, service.metadata());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<InferResult> result = RunInfer(service, *parsed);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(service.last_n, 2);
  inference::ModelInferResponse response;
  FillModelInferResponse(*result, service.metadata(), &response);
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_EQ(std::vector<int64_t>(response.outputs(0).shape().begin(), response.outputs(0).shape().end()),
            (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  ASSERT_EQ(response.raw_output_contents(0).size(), 6 * sizeof(float));
  float second_row_class_1 = 0;
  std::memcpy(&second_row_class_1, response.raw_output_contents(0).data() + 4 * sizeof(float), sizeof(float));
  EXPECT_FLOAT_EQ(second_row_class_1, 0.5f);
  EXPECT_EQ(response.outputs(0).contents().fp32_contents_size(), 0);
}

TEST(RunInferTest, ServiceErrorsPassThrough) {
  FakeExpressionService service;
  service.analyze_status = absl::ResourceExhaustedError("photo declares too many pixels");
  InferRequest request;
  request.image = "x";
  absl::StatusOr<InferResult> result = RunInfer(service, request);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(FacesJsonTest, TotalIsTheMeasuredWallTime) {
  FakeExpressionService service;
  TimedAnalysis timed;
  timed.result.faces = {FakeFace({0.2f, 0.2f, 0.6f})};
  timed.result.decode_ms = 1;
  timed.result.detect_ms = 2;
  timed.result.classify_ms = 3;
  timed.total_ms = 9.5;
  const json j = json::parse(FacesJson(timed, service.metadata()));
  EXPECT_EQ(j["timing_ms"]["total"], 9.5);
  EXPECT_EQ(j["faces"][0]["label"], "sad");
  EXPECT_EQ(j["faces"][0]["label_index"], 2);
  EXPECT_EQ(j["faces"][0]["probabilities"]["sad"].get<double>(), 0.6f);
  EXPECT_EQ(j["faces"][0]["landmarks"][4], json({9.0, 10.0}));
}

}  // namespace
}  // namespace dmue::serving
