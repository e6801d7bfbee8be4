#include "dmue/io/tfjs_weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue::io {
namespace {

namespace fs = std::filesystem;

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A fresh folder holding `manifest` as model.json and the given shards.
std::string WriteModel(const std::string& name, const std::string& manifest,
                       const std::vector<std::pair<std::string, std::string>>& shards) {
  const fs::path dir = testing::TempPath("tfjs/" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& [file, data] : shards) testing::WriteFile((dir / file).string(), data);
  const std::string path = (dir / "model.json").string();
  testing::WriteFile(path, manifest);
  return path;
}

// One group, one shard "w.bin", the given weight entries.
std::string OneGroup(const std::string& weights) {
  return absl::StrCat(R"([{"paths": ["w.bin"], "weights": [)", weights, "]}]");
}

absl::Status ReadStatus(const std::string& name, const std::string& manifest, const std::string& shard,
                        const TfjsReadOptions& options = {}) {
  return ReadTfjsWeights(WriteModel(name, manifest, {{"w.bin", shard}}), options).status();
}

void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& part) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(part), std::string::npos) << "'" << part << "' not in: " << status;
  EXPECT_NE(status.message().find("model.json"), std::string::npos) << "no file named: " << status;
}

TEST(TfjsWeightsTest, DecodesEveryStorageAcrossShardsAndGroups) {
  // Group 0: a float32 [2,1,3] weight split over two shards, then int32.
  // Group 1: uint8 and uint16 affine-quantized, float16, a quantized int32.
  const std::string floats = Bytes<float>({1.5f, -2.f, 3.25f, 0.f, 1e-3f, -7.f});
  const std::string manifest = R"([
    {"paths": ["a1.bin", "a2.bin"], "weights": [
      {"name": "f", "shape": [2, 1, 3], "dtype": "float32"},
      {"name": "i", "shape": [2], "dtype": "int32"}]},
    {"paths": ["b.bin"], "weights": [
      {"name": "q8", "shape": [3], "dtype": "float32",
       "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
      {"name": "q16", "shape": [2], "dtype": "float32",
       "quantization": {"dtype": "uint16", "scale": 0.25, "min": 2.0}},
      {"name": "h", "shape": [5], "dtype": "float32", "quantization": {"dtype": "float16"}},
      {"name": "qi", "shape": [2], "dtype": "int32",
       "quantization": {"dtype": "uint8", "scale": 0.75, "min": -1.0}},
      {"name": "scalar", "shape": [], "dtype": "float32"}]}])";
  const std::string b = std::string("\x00\x02\xff", 3) + Bytes<uint16_t>({0, 65535}) +
                        Bytes<uint16_t>({0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555}) + std::string("\x02\x03", 2) +
                        Bytes<float>({42.f});
  const std::string path = WriteModel(
      "all", manifest,
      {{"a1.bin", floats.substr(0, 10)}, {"a2.bin", floats.substr(10) + Bytes<int32_t>({-5, 1 << 30})}, {"b.bin", b}});
  absl::StatusOr<TfjsWeights> weights = ReadTfjsWeights(path);
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_EQ(weights->weights().size(), 7u);
  EXPECT_EQ(weights->weights()[0].name, "f");  // Manifest order.

  absl::StatusOr<const TfjsWeight*> f = weights->GetFloat("f", {2, 1, 3}, "test");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->floats, (std::vector<float>{1.5f, -2.f, 3.25f, 0.f, 1e-3f, -7.f}));
  EXPECT_EQ(weights->Find("i")->ints, (std::vector<int32_t>{-5, 1 << 30}));
  EXPECT_EQ(weights->Find("q8")->floats, (std::vector<float>{-1.f, 0.f, 126.5f}));
  EXPECT_EQ(weights->Find("q16")->floats, (std::vector<float>{2.f, 2.f + 65535 * 0.25f}));
  const std::vector<float>& h = weights->Find("h")->floats;
  EXPECT_EQ(h[0], 1.f);
  EXPECT_EQ(h[1], -2.f);
  EXPECT_EQ(h[2], 5.9604644775390625e-08f);  // Smallest subnormal half.
  EXPECT_TRUE(std::isinf(h[3]));
  EXPECT_FLOAT_EQ(h[4], 0.333251953125f);
  // Math.round(2 * 0.75 - 1) = Math.round(0.5) = 1; 3 * 0.75 - 1 = 1.25 -> 1.
  EXPECT_EQ(weights->Find("qi")->ints, (std::vector<int32_t>{1, 1}));
  EXPECT_EQ(weights->Find("scalar")->floats, std::vector<float>{42.f});
  EXPECT_EQ(weights->Find("missing"), nullptr);
}

TEST(TfjsWeightsTest, GetFloatChecksPresenceTypeAndShape) {
  const std::string path = WriteModel(
      "get", OneGroup(R"({"name": "w", "shape": [2], "dtype": "float32"},
                         {"name": "n", "shape": [1], "dtype": "int32"})"),
      {{"w.bin", Bytes<float>({1.f, 2.f}) + Bytes<int32_t>({3})}});
  absl::StatusOr<TfjsWeights> weights = ReadTfjsWeights(path);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->GetFloat("x", {2}, "src").status().code(), absl::StatusCode::kNotFound);
  const absl::Status shape = weights->GetFloat("w", {1, 2}, "src").status();
  EXPECT_NE(shape.message().find("src: weight 'w' is float32 [2], expected float32 [1, 2]"), std::string::npos)
      << shape;
  EXPECT_FALSE(weights->GetFloat("n", {1}, "src").ok());
}

TEST(TfjsWeightsTest, RefusesTruncatedAndOversizedShards) {
  const std::string two = OneGroup(R"({"name": "a", "shape": [2], "dtype": "float32"},
                                      {"name": "b", "shape": [2], "dtype": "float32"})");
  ExpectError(ReadStatus("trunc", two, Bytes<float>({1, 2, 3})), absl::StatusCode::kDataLoss,
              "weight 'b': shards");
  ExpectError(ReadStatus("trailing", two, Bytes<float>({1, 2, 3, 4, 5})), absl::StatusCode::kInvalidArgument,
              "need only 16");
}

TEST(TfjsWeightsTest, RefusesBadShapes) {
  const auto shape = [](const std::string& dims) {
    return OneGroup(absl::StrCat(R"({"name": "w", "dtype": "float32", "shape": )", dims, "}"));
  };
  ExpectError(ReadStatus("neg", shape("[2, -1]"), ""), absl::StatusCode::kInvalidArgument,
              "weight 'w': dimension -1 is negative");
  ExpectError(ReadStatus("overflow", shape("[4294967296, 4294967296]"), ""), absl::StatusCode::kInvalidArgument,
              "weight 'w': size overflows int64");
  // numel fits but numel * 4 bytes does not.
  ExpectError(ReadStatus("bytes", shape("[4611686018427387904]"), ""), absl::StatusCode::kInvalidArgument,
              "size overflows int64");
  ExpectError(ReadStatus("huge", shape("[18446744073709551615]"), ""), absl::StatusCode::kInvalidArgument,
              "beyond int64");
  ExpectError(ReadStatus("frac", shape("[2.5]"), ""), absl::StatusCode::kInvalidArgument, "not an integer");
  ExpectError(ReadStatus("str", shape(R"("3")"), ""), absl::StatusCode::kInvalidArgument, "'shape' must be");
  ExpectError(ReadStatus("rank", shape(absl::StrCat("[", absl::StrJoin(std::vector<int>(65, 1), ","), "]")), ""),
              absl::StatusCode::kInvalidArgument, "65 dimensions (at most 64)");
}

TEST(TfjsWeightsTest, RefusesUnknownTypesAndBadQuantization) {
  ExpectError(ReadStatus("dtype", OneGroup(R"({"name": "w", "shape": [1], "dtype": "complex64"})"), ""),
              absl::StatusCode::kInvalidArgument, "weight 'w': dtype 'complex64' is not supported");
  ExpectError(ReadStatus("qdtype", OneGroup(R"({"name": "w", "shape": [1], "dtype": "float32",
                                                 "quantization": {"dtype": "int4"}})"),
                         ""),
              absl::StatusCode::kInvalidArgument, "quantization dtype 'int4'");
  ExpectError(ReadStatus("noscale", OneGroup(R"({"name": "w", "shape": [1], "dtype": "float32",
                                                  "quantization": {"dtype": "uint8", "min": 0}})"),
                         "\x01"),
              absl::StatusCode::kInvalidArgument, "'scale' and 'min'");
  ExpectError(ReadStatus("f16int", OneGroup(R"({"name": "w", "shape": [1], "dtype": "int32",
                                                 "quantization": {"dtype": "float16"}})"),
                         "\x01\x02"),
              absl::StatusCode::kInvalidArgument, "float32 weights only");
  ExpectError(ReadStatus("qnull", OneGroup(R"({"name": "w", "shape": [1], "dtype": "float32",
                                                "quantization": null})"),
                         "\x01"),
              absl::StatusCode::kInvalidArgument, "'quantization' must be an object");
  ExpectError(ReadStatus("qrange", OneGroup(R"({"name": "w", "shape": [1], "dtype": "int32",
                                                 "quantization": {"dtype": "uint8", "scale": 1e10, "min": 0}})"),
                         "\xff"),
              absl::StatusCode::kInvalidArgument, "beyond int32");
}

TEST(TfjsWeightsTest, RefusesBadStructureNamesAndPaths) {
  ExpectError(ReadStatus("json", "[{", ""), absl::StatusCode::kInvalidArgument, "not valid JSON");
  ExpectError(ReadStatus("deep", std::string(100, '[') + std::string(100, ']'), ""),
              absl::StatusCode::kInvalidArgument, "nests deeper");
  ExpectError(ReadStatus("object", R"({"paths": []})", ""), absl::StatusCode::kInvalidArgument,
              "must be a list of groups");
  ExpectError(ReadStatus("group", R"([{"paths": "w.bin", "weights": []}])", ""),
              absl::StatusCode::kInvalidArgument, "group 0 must be an object");
  ExpectError(ReadStatus("noname", OneGroup(R"({"shape": [1], "dtype": "float32"})"), ""),
              absl::StatusCode::kInvalidArgument, "group 0 weight 0: 'name'");
  ExpectError(ReadStatus("dup", OneGroup(R"({"name": "w", "shape": [1], "dtype": "float32"},
                                            {"name": "w", "shape": [1], "dtype": "float32"})"),
                         Bytes<float>({1, 2})),
              absl::StatusCode::kInvalidArgument, "weight 'w': name appears more than once");
  for (const char* escape : {R"("../w.bin")", R"("/etc/passwd")", R"("a/../../w.bin")", R"("")", "3"}) {
    ExpectError(ReadStatus("escape", absl::StrCat(R"([{"paths": [)", escape, R"(], "weights": []}])"), ""),
                absl::StatusCode::kInvalidArgument, "shard path");
  }
}

TEST(TfjsWeightsTest, MissingShardNamesShardAndManifest) {
  const std::string path =
      WriteModel("missing", R"([{"paths": ["absent.bin"], "weights": []}])", {});
  const absl::Status status = ReadTfjsWeights(path).status();
  ExpectError(status, absl::StatusCode::kNotFound, "absent.bin: no such file");
  EXPECT_EQ(ReadTfjsWeights(path + ".nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(TfjsWeightsTest, EnforcesBudgets) {
  const std::string one = OneGroup(R"({"name": "w", "shape": [4], "dtype": "float32",
                                       "quantization": {"dtype": "uint8", "scale": 1, "min": 0}})");
  TfjsReadOptions options;
  options.max_decoded_bytes = 15;  // 4 uint8 -> 16 decoded bytes.
  ExpectError(ReadStatus("decoded", one, "abcd", options), absl::StatusCode::kResourceExhausted,
              "16 decoded bytes");
  options = {};
  options.max_shard_bytes = 3;
  ExpectError(ReadStatus("shard", one, "abcd", options), absl::StatusCode::kResourceExhausted, "4 shard bytes");
  // A shard file larger than the budget is refused before it is read.
  options.max_shard_bytes = 4;
  ExpectError(ReadStatus("file", one, std::string(1000, 'x'), options), absl::StatusCode::kResourceExhausted,
              "exceeds the limit");
  options = {};
  options.max_weights = 1;
  ExpectError(ReadStatus("count", OneGroup(R"({"name": "a", "shape": [], "dtype": "float32"},
                                              {"name": "b", "shape": [], "dtype": "float32"})"),
                         Bytes<float>({1, 2}), options),
              absl::StatusCode::kResourceExhausted, "more than 1 weights");
  options = {};
  options.max_manifest_bytes = 8;
  EXPECT_EQ(ReadStatus("manifest", one, "abcd", options).code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace dmue::io
