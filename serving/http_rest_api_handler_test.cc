// HttpRestApiHandler::ProcessRequest without sockets, against a fake
// ExpressionService: every route, its JSON, its errors and codes.
#include "serving/http_rest_api_handler.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "serving/metrics.h"
#include "serving/testing/fake_expression_service.h"

namespace dmue::serving {
namespace {

using json = nlohmann::json;
using testing::FakeExpressionService;
using testing::FakeFace;

class HttpRestApiHandlerTest : public ::testing::Test {
 protected:
  HttpRestApiHandlerTest() : handler_(&metrics_, "<html>page</html>") {
    service_.analyze_result.width = 320;
    service_.analyze_result.height = 240;
    service_.analyze_result.faces = {FakeFace({0.1f, 0.8f, 0.1f})};
    service_.analyze_result.faces_dropped = 1;
    handler_.SetService(&service_);
  }

  HttpReply Get(const std::string& path) const { return handler_.ProcessRequest("GET", path, "", {}, ""); }
  HttpReply Post(const std::string& path, const std::string& body, const std::string& type = "application/json",
                 const std::string& query = "") const {
    return handler_.ProcessRequest("POST", path, query, {{"content-type", type}}, body);
  }
  static json Json(const HttpReply& reply) {
    json j = json::parse(reply.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << reply.body;
    return j;
  }
  static void ExpectError(const HttpReply& reply, int status, const std::string& fragment) {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.content_type, "application/json");
    const json j = Json(reply);
    EXPECT_EQ(j["code"], status);
    EXPECT_NE(j["error"].get<std::string>().find(fragment), std::string::npos) << reply.body;
  }

  MetricsRegistry metrics_;
  FakeExpressionService service_;
  HttpRestApiHandler handler_;
};

TEST_F(HttpRestApiHandlerTest, HealthServerAndModelMetadata) {
  EXPECT_EQ(Get("/v2/health/live").status, 200);
  EXPECT_EQ(Get("/v2/health/live").route, "/v2/health/live");
  EXPECT_EQ(Json(Get("/v2/health/ready"))["ready"], true);
  EXPECT_EQ(Json(Get("/v2"))["name"], "dmue-server");
  const HttpReply meta = Get("/v2/models/dmue");
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.route, "/v2/models/metadata");
  const json m = Json(meta);
  EXPECT_EQ(m["inputs"].size(), 2u);
  EXPECT_EQ(m["outputs"].size(), 5u);
  EXPECT_EQ(m["inputs"][1]["shape"], json({-1, 3, 4, 4}));
  EXPECT_EQ(Get("/v2/models/dmue/versions/1").status, 200);
  EXPECT_EQ(Get("/v2/models/dmue/ready").status, 200);
  EXPECT_EQ(Get("/v2/models/dmue/versions/1/ready").route, "/v2/models/ready");
  ExpectError(Get("/v2/models/other"), 404, "unknown model 'other'");
  ExpectError(Get("/v2/models/dmue/versions/7/ready"), 404, "unknown version '7'");
}

TEST_F(HttpRestApiHandlerTest, NotReadyWithoutAService) {
  HttpRestApiHandler handler(nullptr, "");
  EXPECT_EQ(handler.ProcessRequest("GET", "/v2/health/ready", "", {}, "").status, 503);
  EXPECT_EQ(handler.ProcessRequest("GET", "/v2/health/live", "", {}, "").status, 200);
  ExpectError(handler.ProcessRequest("POST", "/v1/faces", "", {}, "jpeg"), 503, "not loaded");
  ExpectError(handler.ProcessRequest("GET", "/v2/models/dmue", "", {}, ""), 503, "not loaded");
  // No registry: no /metrics route.
  EXPECT_EQ(handler.ProcessRequest("GET", "/metrics", "", {}, "").status, 404);
}

TEST_F(HttpRestApiHandlerTest, FacesRawBodyAndQuery) {
  const HttpReply reply = Post("/v1/faces", "jpeg bytes", "image/jpeg", "skip_detection=true");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.route, "/v1/faces");
  EXPECT_EQ(service_.last_image, "jpeg bytes");
  EXPECT_EQ(service_.last_source, "request body");
  EXPECT_TRUE(service_.last_options.skip_detection);
  const json j = Json(reply);
  EXPECT_EQ(j["width"], 320);
  EXPECT_EQ(j["faces_dropped"], 1);
  EXPECT_EQ(j["classes"], json({"neutral", "happy", "sad"}));
  EXPECT_EQ(j["faces"][0]["label"], "happy");
  EXPECT_EQ(j["faces"][0]["box"], json({10.0, 20.0, 110.0, 140.0}));
  EXPECT_GE(j["timing_ms"]["total"].get<double>(), 0);

  Post("/v1/faces", "x", "application/octet-stream", "skip_detection=0");
  EXPECT_FALSE(service_.last_options.skip_detection);
}

TEST_F(HttpRestApiHandlerTest, FacesMultipart) {
  const FormFiles files = {{"image", FormFile{"me.jpg", "image/jpeg", "uploaded"}}};
  const HttpHeaders headers = {{"Content-Type", "multipart/form-data; boundary=x"}};
  const HttpReply reply = handler_.ProcessRequest("POST", "/v1/faces", "", headers, "", &files);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(service_.last_image, "uploaded");
  EXPECT_EQ(service_.last_source, "uploaded file 'me.jpg'");
  const FormFiles other = {{"photo", FormFile{"me.jpg", "image/jpeg", "uploaded"}}};
  ExpectError(handler_.ProcessRequest("POST", "/v1/faces", "", headers, "", &other), 400, "'image' field");
}

TEST_F(HttpRestApiHandlerTest, FacesErrorsMapThroughTheStatus) {
  ExpectError(Post("/v1/faces", "{}", "application/json"), 415, "unsupported Content-Type");
  service_.analyze_status = absl::InvalidArgumentError("request body: not an image");
  ExpectError(Post("/v1/faces", "junk", "image/jpeg"), 400, "not an image");
  service_.analyze_status = absl::ResourceExhaustedError("request body: 100000 x 100000 pixels");
  ExpectError(Post("/v1/faces", "bomb", "image/png"), 413, "pixels");
  service_.analyze_status = absl::UnavailableError("shutting down");
  ExpectError(Post("/v1/faces", "jpeg", "image/jpeg"), 503, "shutting down");
}

TEST_F(HttpRestApiHandlerTest, OpenInferenceProtocolImageAndTensor) {
  const json image = {{"id", "r1"},
                      {"inputs",
                       {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}},
                         {"data", {absl::Base64Escape("photo")}}}}}};
  const HttpReply reply = Post("/v2/models/dmue/infer", image.dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.route, "/v2/models/infer");
  EXPECT_EQ(service_.last_image, "photo");
  const json j = Json(reply);
  EXPECT_EQ(j["id"], "r1");
  EXPECT_EQ(j["model_name"], "dmue");
  ASSERT_EQ(j["outputs"].size(), 5u);
  EXPECT_EQ(j["outputs"][0]["name"], "boxes");
  EXPECT_EQ(j["outputs"][3]["shape"], json({1, 3}));
  EXPECT_EQ(j["outputs"][4]["data"], json({"happy"}));

  std::vector<float> data(2 * 3 * 4 * 4, 0.5f);
  const json tensor = {{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {2, 3, 4, 4}}, {"data", data}}}}};
  const HttpReply t = Post("/v2/models/dmue/versions/1/infer", tensor.dump());
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(service_.last_n, 2);
  EXPECT_EQ(service_.last_tensor, data);
  EXPECT_EQ(Json(t)["outputs"][0]["shape"], json({2, 3}));
}

TEST_F(HttpRestApiHandlerTest, OpenInferenceProtocolErrors) {
  ExpectError(Post("/v2/models/nope/infer", "{}"), 404, "unknown model 'nope'");
  ExpectError(Post("/v2/models/dmue/infer", "{\"inputs\": ["), 400, "not valid JSON");
  ExpectError(Post("/v2/models/dmue/infer", R"({"inputs":[{"name":7}]})"), 400, "'name' must be a string");
  ExpectError(Post("/v2/models/dmue/infer",
                   R"({"inputs":[{"name":"input","datatype":"FP32","shape":[4294967297,3,4,4],"data":[0]}]})"),
              400, "beyond");
  ExpectError(Post("/v2/models/dmue/infer", std::string(5000, '[') + std::string(5000, ']')), 400, "deeper");
  service_.classify_status = absl::UnavailableError("batcher stopped");
  std::vector<float> data(3 * 4 * 4, 0.f);
  const json tensor = {{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 3, 4, 4}}, {"data", data}}}}};
  ExpectError(Post("/v2/models/dmue/infer", tensor.dump()), 503, "batcher stopped");
}

TEST_F(HttpRestApiHandlerTest, UnknownRoutesPageAndMetrics) {
  const HttpReply none = Get("/v3/whatever");
  ExpectError(none, 404, "no route for GET /v3/whatever");
  EXPECT_EQ(none.route, "other");
  ExpectError(Post("/v2/models/dmue/explain", "{}"), 404, "no route");
  ExpectError(Get("/v2/models/dmue/infer"), 404, "no route");
  const HttpReply page = Get("/");
  EXPECT_EQ(page.body, "<html>page</html>");
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  metrics_.AddCounter("dmue_test_total", "test")->Add(1, {});
  const HttpReply text = Get("/metrics");
  EXPECT_EQ(text.status, 200);
  EXPECT_TRUE(text.route.empty());
  EXPECT_NE(text.body.find("dmue_test_total"), std::string::npos);
}

TEST(HttpRestApiHandlerStaticTest, InferenceRoutes) {
  EXPECT_TRUE(HttpRestApiHandler::IsInferenceRoute("POST", "/v1/faces"));
  EXPECT_TRUE(HttpRestApiHandler::IsInferenceRoute("POST", "/v2/models/dmue/versions/1/infer"));
  EXPECT_FALSE(HttpRestApiHandler::IsInferenceRoute("GET", "/v1/faces"));
  EXPECT_EQ(HttpRestApiHandler::RouteLabel("POST", "/v2/models/x/infer"), "/v2/models/infer");
  EXPECT_EQ(HttpRestApiHandler::RouteLabel("GET", "/"), "other");
}

}  // namespace
}  // namespace dmue::serving
