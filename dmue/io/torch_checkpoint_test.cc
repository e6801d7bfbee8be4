#include "dmue/io/torch_checkpoint.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "dmue/io/value.h"
#include "dmue/io/zip_archive.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"
#include "third_party/shared_data.h"

namespace dmue::io {
namespace {

using ::dmue::testing::TempPath;
using ::dmue::testing::ReadFile;
using ::dmue::testing::WriteFile;

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

// --- A tiny JSON reader for state_dict_expected.json -----------------------

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  double number = 0;
  bool boolean = false;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json& operator[](const std::string& key) const {
    for (const auto& [k, v] : object) {
      if (k == key) return v;
    }
    static const Json kNullJson;
    return kNullJson;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}
  Json Parse() {
    Skip();
    Json out;
    const char c = s_[i_];
    if (c == '{') {
      out.kind = Json::kObject;
      ++i_;
      Skip();
      if (s_[i_] == '}') {
        ++i_;
        return out;
      }
      while (true) {
        Skip();
        std::string key = ParseString();
        Skip();
        ++i_;  // ':'
        out.object.emplace_back(std::move(key), Parse());
        Skip();
        if (s_[i_++] == '}') return out;
      }
    }
    if (c == '[') {
      out.kind = Json::kArray;
      ++i_;
      Skip();
      if (s_[i_] == ']') {
        ++i_;
        return out;
      }
      while (true) {
        out.array.push_back(Parse());
        Skip();
        if (s_[i_++] == ']') return out;
      }
    }
    if (c == '"') {
      out.kind = Json::kString;
      out.string = ParseString();
      return out;
    }
    if (s_.compare(i_, 4, "true") == 0) {
      i_ += 4;
      out.kind = Json::kBool;
      out.boolean = true;
      return out;
    }
    if (s_.compare(i_, 5, "false") == 0) {
      i_ += 5;
      out.kind = Json::kBool;
      return out;
    }
    if (s_.compare(i_, 4, "null") == 0) {
      i_ += 4;
      return out;
    }
    char* end = nullptr;
    out.kind = Json::kNumber;
    out.number = std::strtod(s_.c_str() + i_, &end);  // Exact for repr()s.
    i_ = end - s_.c_str();
    return out;
  }

 private:
  void Skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_])))
      ++i_;
  }
  std::string ParseString() {
    std::string out;
    ++i_;  // Opening quote; keys here have no escapes.
    while (s_[i_] != '"') out.push_back(s_[i_++]);
    ++i_;
    return out;
  }
  const std::string& s_;
  size_t i_ = 0;
};

// ---------------------------------------------------------------------------

const char* DtypeString(const at::Tensor& t) {
  DType d;
  switch (t.scalar_type()) {
    case at::kFloat:
      d = DType::kFloat32;
      break;
    case at::kDouble:
      d = DType::kFloat64;
      break;
    case at::kHalf:
      d = DType::kFloat16;
      break;
    case at::kBFloat16:
      d = DType::kBFloat16;
      break;
    case at::kLong:
      d = DType::kInt64;
      break;
    case at::kInt:
      d = DType::kInt32;
      break;
    case at::kShort:
      d = DType::kInt16;
      break;
    case at::kChar:
      d = DType::kInt8;
      break;
    case at::kByte:
      d = DType::kUInt8;
      break;
    case at::kBool:
      d = DType::kBool;
      break;
    default:
      return "?";
  }
  return DTypeName(d);
}

std::map<std::string, at::Tensor> AsMap(const StateDict& sd) {
  return std::map<std::string, at::Tensor>(sd.begin(), sd.end());
}

// Compares a state dict against state_dict_expected.json, exactly.
void ExpectMatchesGolden(const StateDict& sd, bool prefixed) {
  DMUE_SHARED_OR_SKIP(json_path, "golden/checkpoints/state_dict_expected.json");
  const std::string text = ReadFile(json_path);
  const Json expected = JsonParser(text).Parse();
  ASSERT_EQ(expected.kind, Json::kObject);
  ASSERT_EQ(sd.size(), expected.object.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    std::string key = expected.object[i].first;
    if (!prefixed && absl::StartsWith(key, "module.")) key = key.substr(7);
    SCOPED_TRACE(key);
    ASSERT_EQ(sd[i].first, key);  // File order is kept.
    const at::Tensor& t = sd[i].second;
    const Json& e = expected.object[i].second;
    EXPECT_EQ(DtypeString(t), e["dtype"].string);
    std::vector<int64_t> shape;
    for (const Json& d : e["shape"].array)
      shape.push_back(static_cast<int64_t>(d.number));
    EXPECT_EQ(t.sizes().vec(), shape);
    const at::Tensor flat = t.to(at::kDouble).contiguous().reshape({-1});
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(e["values"].array.size()));
    const double* v = flat.data_ptr<double>();
    for (int64_t j = 0; j < flat.numel(); ++j) {
      const Json& x = e["values"].array[j];
      const double want =
          x.kind == Json::kBool ? (x.boolean ? 1.0 : 0.0) : x.number;
      ASSERT_EQ(v[j], want) << "element " << j;
    }
  }
}

TEST(TorchCheckpointTest, ReadsZipStateDict) {
  DMUE_SHARED_OR_SKIP(path, "golden/checkpoints/state_dict_zip.pth");
  absl::StatusOr<StateDict> sd =
      ReadStateDict(path, {.strip_module_prefix = false});
  ASSERT_TRUE(sd.ok()) << sd.status();
  ExpectMatchesGolden(*sd, /*prefixed=*/true);
  // The three views share one storage, as in Python.
  auto m = AsMap(*sd);
  EXPECT_EQ(m["view.transposed"].storage().data(),
            m["view.offset_row"].storage().data());
  EXPECT_EQ(m["view.strided_col"].storage().data(),
            m["view.transposed"].storage().data());
  EXPECT_EQ(m["view.offset_row"].storage_offset(), 12);
}

TEST(TorchCheckpointTest, ReadsLegacyStateDictAndStripsModule) {
  DMUE_SHARED_OR_SKIP(path, "golden/checkpoints/state_dict_legacy.pth");
  absl::StatusOr<StateDict> sd = ReadStateDict(path);
  ASSERT_TRUE(sd.ok()) << sd.status();
  ExpectMatchesGolden(*sd, /*prefixed=*/false);
  auto m = AsMap(*sd);
  EXPECT_EQ(m["view.transposed"].storage().data(),
            m["view.offset_row"].storage().data());
}

TEST(TorchCheckpointTest, ReadsNestedPretrainCheckpoints) {
  DMUE_SHARED_OR_SKIP(sd_path, "golden/checkpoints/state_dict_zip.pth");
  absl::StatusOr<StateDict> reference = ReadStateDict(sd_path);
  ASSERT_TRUE(reference.ok()) << reference.status();
  auto ref = AsMap(*reference);
  for (const char* name : {"golden/checkpoints/pretrain_nested_zip.pt",
                           "golden/checkpoints/pretrain_nested_legacy.pt"}) {
    SCOPED_TRACE(name);
    DMUE_SHARED_OR_SKIP(path, name);
    absl::StatusOr<Value> root = ReadCheckpoint(path);
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(root->Get("epoch")->as_int(), 17);
    EXPECT_EQ(root->Get("batch_id")->as_int(), 1234);
    EXPECT_TRUE(root->Get("state_dict")->dict().ordered());
    absl::StatusOr<StateDict> sd = ReadStateDict(path);
    ASSERT_TRUE(sd.ok()) << sd.status();
    ASSERT_FALSE(sd->empty());
    for (const auto& [key, tensor] : *sd) {
      ASSERT_TRUE(absl::StartsWith(key, "feat_net.")) << key;
      const std::string base = "base." + key.substr(9);
      ASSERT_TRUE(ref.count(base)) << base;
      EXPECT_TRUE(at::equal(tensor, ref[base])) << key;
    }
  }
}

TEST(TorchCheckpointTest, ReadsSingleEntryDict) {
  DMUE_SHARED_OR_SKIP(path, "golden/checkpoints/one_item_zip.pth");
  absl::StatusOr<StateDict> sd = ReadStateDict(path);
  ASSERT_TRUE(sd.ok()) << sd.status();
  ASSERT_EQ(sd->size(), 1u);
  EXPECT_EQ((*sd)[0].first, "only");
  EXPECT_TRUE(at::equal((*sd)[0].second, at::ones({2, 2})));
}

TEST(TorchCheckpointTest, RefusesMaliciousFilesWithoutRunningThem) {
  for (const char* name : {"golden/checkpoints/malicious_zip.pth",
                           "golden/checkpoints/malicious_legacy.pth"}) {
    SCOPED_TRACE(name);
    DMUE_SHARED_OR_SKIP(path, name);
    // os.system's child would write "pwned" to our stdout.
    ::testing::internal::CaptureStdout();
    absl::StatusOr<Value> root = ReadCheckpoint(path);
    const std::string out = ::testing::internal::GetCapturedStdout();
    ASSERT_FALSE(root.ok());
    EXPECT_EQ(root.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_NE(root.status().message().find("posix.system"), std::string::npos)
        << root.status();
    EXPECT_NE(root.status().message().find(path), std::string::npos);
    EXPECT_EQ(out.find("pwned"), std::string::npos);
  }
}

TEST(TorchCheckpointTest, TruncatedFilesGiveClearErrors) {
  for (const char* name : {"golden/checkpoints/truncated_zip.pth",
                           "golden/checkpoints/truncated_legacy.pth"}) {
    SCOPED_TRACE(name);
    DMUE_SHARED_OR_SKIP(path, name);
    absl::StatusOr<Value> root = ReadCheckpoint(path);
    ASSERT_FALSE(root.ok());
    EXPECT_NE(root.status().message().find("truncated"), std::string::npos)
        << root.status();
    EXPECT_NE(root.status().message().find(path), std::string::npos);
  }
}

TEST(TorchCheckpointTest, EveryPrefixOfALegacyFileFailsCleanly) {
  DMUE_SHARED_OR_SKIP(path, "golden/checkpoints/state_dict_legacy.pth");
  const std::string data = ReadFile(path);
  const std::string cut = TempPath("cut.pth");
  for (size_t n = 0; n < data.size(); n += 37) {
    WriteFile(cut, data.substr(0, n));
    EXPECT_FALSE(ReadCheckpoint(cut).ok()) << n;
  }
}

TEST(TorchCheckpointTest, CorruptInputs) {
  const std::string missing = TempPath("no_such_file.pth");
  absl::StatusOr<Value> r = ReadCheckpoint(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(missing), std::string::npos);

  const std::string empty = TempPath("empty.pth");
  WriteFile(empty, "");
  r = ReadCheckpoint(empty);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(empty), std::string::npos);

  const std::string noise = TempPath("noise.pth");
  std::mt19937 rng(7);
  for (const std::string& head : {std::string(""), std::string("PK\x03\x04", 4),
                                  std::string("\x80\x02\x8a\x0a", 4)}) {
    std::string bytes = head;
    for (int i = 0; i < 4096; ++i) bytes.push_back(static_cast<char>(rng()));
    WriteFile(noise, bytes);
    r = ReadCheckpoint(noise);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(noise), std::string::npos)
        << r.status();
  }
}

TEST(TorchCheckpointTest, ReadsGoldenTensorFiles) {
  DMUE_SHARED_OR_SKIP(batch, "golden/batch_c8.pt");
  absl::StatusOr<StateDict> sd = ReadStateDict(batch);
  ASSERT_TRUE(sd.ok()) << sd.status();
  auto m = AsMap(*sd);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m["images"].sizes().vec(), (std::vector<int64_t>{32, 3, 224, 224}));
  EXPECT_EQ(m["images"].scalar_type(), at::kFloat);
  const std::vector<int64_t> labels = {5, 1, 3, 0, 2, 1, 3, 4, 5, 4, 2,
                                       3, 4, 7, 2, 7, 6, 6, 5, 0, 7, 1,
                                       2, 0, 0, 1, 0, 3, 6, 0, 1, 4};
  ASSERT_EQ(m["labels"].scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(m["labels"], at::tensor(labels, at::kLong)));
  // randn under a fixed seed: roughly standard normal.
  EXPECT_NEAR(m["images"].mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(m["images"].std().item<double>(), 1.0, 0.01);

  DMUE_SHARED_OR_SKIP(checksums, "golden/checksums_c8.pt");
  sd = ReadStateDict(checksums, {.strip_module_prefix = false});
  ASSERT_TRUE(sd.ok()) << sd.status();
  EXPECT_EQ(sd->size(), static_cast<size_t>((379 + 379 + 126) * 2));
  for (const auto& [key, t] : *sd) {
    // "<group>.<key>" holds the float64 stats, "<group>.<key>.bits" the
    // exact int64 bit-sum.
    if (absl::EndsWith(key, ".bits")) {
      EXPECT_EQ(t.scalar_type(), at::kLong) << key;
      EXPECT_EQ(t.dim(), 0) << key;
    } else {
      EXPECT_EQ(t.scalar_type(), at::kDouble) << key;
      EXPECT_EQ(t.sizes().vec(), std::vector<int64_t>{6}) << key;
      EXPECT_GE(t[0].item<double>(), 1.0) << key;  // numel of the tensor.
    }
  }
}

TEST(TorchCheckpointTest, ReadsMtcnnLegacyWeights) {
  struct Net {
    const char* file;
    size_t tensors;
    int64_t parameters;
    const char* key;
    std::vector<int64_t> shape;
  };
  const Net nets[] = {
      {"models/mtcnn/pnet.pt", 13, 6632, "conv4_2.weight", {4, 32, 1, 1}},
      {"models/mtcnn/rnet.pt", 16, 100178, "dense4.weight", {128, 576}},
      {"models/mtcnn/onet.pt", 21, 389040, "dense6_3.bias", {10}},
  };
  for (const Net& net : nets) {
    SCOPED_TRACE(net.file);
    DMUE_SHARED_OR_SKIP(path, net.file);
    absl::StatusOr<StateDict> sd = ReadStateDict(path);
    ASSERT_TRUE(sd.ok()) << sd.status();
    EXPECT_EQ(sd->size(), net.tensors);
    int64_t total = 0;
    for (const auto& [key, t] : *sd) {
      EXPECT_EQ(t.scalar_type(), at::kFloat) << key;
      EXPECT_TRUE(t.isfinite().all().item<bool>()) << key;
      total += t.numel();
    }
    EXPECT_EQ(total, net.parameters);
    auto m = AsMap(*sd);
    ASSERT_TRUE(m.count(net.key));
    EXPECT_EQ(m[net.key].sizes().vec(), net.shape);
    EXPECT_EQ((*sd)[0].first, "conv1.weight");
  }
}

// Bit-exact comparison, including dtype, shape and every byte.
void ExpectBitEqual(const at::Tensor& a, const at::Tensor& b) {
  ASSERT_EQ(a.scalar_type(), b.scalar_type());
  ASSERT_EQ(a.sizes(), b.sizes());
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  // An empty tensor's data pointer may be null, which memcmp must not see
  // even for 0 bytes (UBSan: nonnull argument).
  if (ca.nbytes() == 0) return;
  EXPECT_EQ(std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()), 0);
}

TEST(TorchCheckpointTest, StateDictRoundTripIsBitExact) {
  at::manual_seed(3);
  const at::Tensor base = at::randn({4, 6});
  StateDict sd = {
      {"f32", at::randn({3, 5})},
      {"f64", at::randn({7}, at::kDouble)},
      {"f16", at::randn({2, 3}).to(at::kHalf)},
      {"bf16", at::randn({5}).to(at::kBFloat16)},
      {"i64", at::arange(-5, 5, at::kLong)},
      {"i32", at::arange(-3, 3, at::kInt)},
      {"i16", at::arange(-300, 300, 7, at::kShort)},
      {"i8", at::arange(-128, 127, 5).to(at::kChar)},
      {"u8", at::arange(0, 256, 3).to(at::kByte)},
      {"bool", at::rand({9}) > 0.5},
      {"scalar", at::scalar_tensor(2.5)},
      {"count", at::scalar_tensor(17, at::kLong)},
      {"empty", at::empty({0, 4})},
      {"nan", at::tensor({NAN, INFINITY, -0.0f})},
      {"view.base", base},
      {"view.t", base.t()},
      {"view.row", base[2]},
      {"view.col", base.select(1, 1)},
      {"view.narrow", base.narrow(1, 2, 3)},
  };
  const std::string path = TempPath("roundtrip.pth");
  ASSERT_TRUE(WriteStateDict(path, sd).ok());
  EXPECT_FALSE(Exists(path + ".tmp"));
  absl::StatusOr<StateDict> back = ReadStateDict(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), sd.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    SCOPED_TRACE(sd[i].first);
    EXPECT_EQ((*back)[i].first, sd[i].first);
    ExpectBitEqual((*back)[i].second, sd[i].second);
    EXPECT_EQ((*back)[i].second.strides(), sd[i].second.strides());
  }
  auto m = AsMap(*back);
  EXPECT_EQ(m["view.t"].storage().data(), m["view.base"].storage().data());
  EXPECT_EQ(m["view.col"].storage().data(), m["view.base"].storage().data());
  EXPECT_EQ(m["view.row"].storage_offset(), 12);
  // The five views were written once: 15 storages, not 19.
  const std::string raw = ReadFile(path);
  EXPECT_NE(raw.find("archive/data/14"), std::string::npos);
  EXPECT_EQ(raw.find("archive/data/15"), std::string::npos);
}

TEST(TorchCheckpointTest, StorageSharedAcrossDtypesIsCopied) {
  const at::Tensor f = at::arange(8, at::kFloat);
  const at::Tensor i = f.view(at::kInt);  // Same bytes, other dtype.
  const std::string path = TempPath("reinterpret.pth");
  ASSERT_TRUE(WriteStateDict(path, {{"f", f}, {"i", i}}).ok());
  absl::StatusOr<StateDict> back = ReadStateDict(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectBitEqual((*back)[0].second, f);
  ExpectBitEqual((*back)[1].second, i);
}

TEST(TorchCheckpointTest, NestedCheckpointRoundTrip) {
  Value root = Value::MakeDict();
  Dict& d = root.mutable_dict();
  StateDict model = {{"w", at::randn({3, 3})}, {"b", at::zeros({3})}};
  absl::StatusOr<Value> model_value = StateDictToValue(model);
  ASSERT_TRUE(model_value.ok());
  d.Set(Value::String("model"), *model_value);
  Value state = Value::MakeDict();
  Value param0 = Value::MakeDict();
  param0.mutable_dict().Set(Value::String("step"), Value::Int(3));
  param0.mutable_dict().Set(Value::String("exp_avg"),
                            *FromTensor(at::ones({3, 3})));
  state.mutable_dict().Set(Value::Int(0), param0);
  Value group = Value::MakeDict();
  group.mutable_dict().Set(Value::String("lr"), Value::Double(0.01));
  group.mutable_dict().Set(
      Value::String("betas"),
      Value::MakeTuple({Value::Double(0.9), Value::Double(0.999)}));
  group.mutable_dict().Set(Value::String("params"),
                           Value::MakeList({Value::Int(0), Value::Int(1)}));
  group.mutable_dict().Set(Value::String("nesterov"), Value::Bool(false));
  Value optimizer = Value::MakeDict();
  optimizer.mutable_dict().Set(Value::String("state"), state);
  optimizer.mutable_dict().Set(Value::String("param_groups"),
                               Value::MakeList({group}));
  d.Set(Value::String("optimizer"), optimizer);
  d.Set(Value::String("epoch"), Value::Int(17));
  d.Set(Value::String("arch"), Value::String("resnet18"));
  d.Set(Value::String("best"), Value::None());
  d.Set(Value::String("raw"), Value::Bytes("\x01\x02"));

  const std::string path = TempPath("nested.pth");
  WriteFile(path, "an older checkpoint");
  ASSERT_TRUE(WriteCheckpoint(path, root).ok());
  absl::StatusOr<Value> back = ReadCheckpoint(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Get("epoch")->as_int(), 17);
  EXPECT_EQ(back->Get("arch")->as_string(), "resnet18");
  EXPECT_TRUE(back->Get("best")->is_none());
  EXPECT_EQ(back->Get("raw")->as_bytes(), "\x01\x02");
  const Value& opt = *back->Get("optimizer");
  const Value& p0 = *opt.Get("state")->dict().Find(0);
  EXPECT_EQ(p0.Get("step")->as_int(), 3);
  EXPECT_TRUE(at::equal(*ToTensor(*p0.Get("exp_avg")), at::ones({3, 3})));
  const Value& g = opt.Get("param_groups")->items()[0];
  EXPECT_EQ(g.Get("lr")->as_double(), 0.01);
  EXPECT_EQ(g.Get("betas")->items()[1].as_double(), 0.999);
  EXPECT_EQ(g.Get("params")->items().size(), 2u);
  EXPECT_FALSE(g.Get("nesterov")->as_bool());

  absl::StatusOr<StateDict> sd = ReadStateDict(path);  // Picks 'model'.
  ASSERT_TRUE(sd.ok()) << sd.status();
  ASSERT_EQ(sd->size(), 2u);
  EXPECT_TRUE(at::equal((*sd)[0].second, model[0].second));
}

TEST(TorchCheckpointTest, RewritesLegacyAsZip) {
  DMUE_SHARED_OR_SKIP(path, "golden/checkpoints/state_dict_legacy.pth");
  absl::StatusOr<Value> root = ReadCheckpoint(path);
  ASSERT_TRUE(root.ok()) << root.status();
  const std::string out = TempPath("converted.pth");
  ASSERT_TRUE(WriteCheckpoint(out, *root).ok());
  absl::StatusOr<StateDict> a =
      ReadStateDict(path, {.strip_module_prefix = false});
  absl::StatusOr<StateDict> b =
      ReadStateDict(out, {.strip_module_prefix = false});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].first, (*b)[i].first);
    ExpectBitEqual((*a)[i].second, (*b)[i].second);
  }
  ExpectMatchesGolden(*b, /*prefixed=*/true);
}

TEST(TorchCheckpointTest, StateDictSelectionErrors) {
  const std::string path = TempPath("not_a_state_dict.pth");
  ASSERT_TRUE(WriteCheckpoint(path, Value::MakeList({Value::Int(1)})).ok());
  absl::StatusOr<StateDict> sd = ReadStateDict(path);
  ASSERT_FALSE(sd.ok());
  EXPECT_NE(sd.status().message().find("found a list"), std::string::npos);

  Value mixed = Value::MakeDict();
  mixed.mutable_dict().Set(Value::String("epoch"), Value::Int(1));
  mixed.mutable_dict().Set(Value::String("weights"),
                           *FromTensor(at::ones({1})));
  ASSERT_TRUE(WriteCheckpoint(path, mixed).ok());
  sd = ReadStateDict(path);
  ASSERT_FALSE(sd.ok());
  EXPECT_NE(sd.status().message().find("'state_dict'"), std::string::npos);

  // Stripping "module." must not merge two entries silently.
  ASSERT_TRUE(
      WriteStateDict(path, {{"module.a", at::ones({1})}, {"a", at::ones({1})}})
          .ok());
  EXPECT_FALSE(ReadStateDict(path).ok());
  EXPECT_TRUE(ReadStateDict(path, {.strip_module_prefix = false}).ok());
}

TEST(TorchCheckpointTest, FailedWriteKeepsTheOldFile) {
  const std::string path = TempPath("keep.pth");
  WriteFile(path, "old");
  Value bad = Value::MakeDict();
  bad.mutable_dict().Set(Value::String("x"), *FromTensor(at::ones({1})));
  bad.mutable_dict().Set(Value::String("g"), Value::Global("os.system"));
  EXPECT_FALSE(WriteCheckpoint(path, bad).ok());
  EXPECT_EQ(ReadFile(path), "old");
  EXPECT_FALSE(Exists(path + ".tmp"));
  EXPECT_FALSE(
      WriteStateDict(TempPath("no_dir/x.pth"), {{"a", at::ones({1})}}).ok());
  EXPECT_FALSE(FromTensor(at::ones({1}, at::kComplexFloat)).ok());
}

// --- Hostile checkpoints, made here ----------------------------------------

std::string Le32(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}
std::string Int64(int64_t v) {  // LONG1, 8 bytes.
  std::string out = "\x8a\x08";
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  return out;
}
std::string Str(const std::string& s) { return "X" + Le32(s.size()) + s; }
std::string IntTuple(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (int64_t x : v) out += Int64(x);
  return out + "t";
}
constexpr char kRebuild[] = "ctorch._utils\n_rebuild_tensor_v2\n(";
// ('storage', torch.FloatStorage, '0', 'cpu', numel[, None]) and BINPERSID.
std::string FloatPid(int64_t numel, bool legacy = false) {
  return "(" + Str("storage") + "ctorch\nFloatStorage\n" + Str("0") +
         Str("cpu") + Int64(numel) + (legacy ? "N" : "") + "tQ";
}
// The arguments after the storage, and the call.
std::string RebuildTail(int64_t offset, const std::vector<int64_t>& sizes,
                        const std::vector<int64_t>& strides) {
  return Int64(offset) + IntTuple(sizes) + IntTuple(strides) +
         "\x89"
         "ccollections\nOrderedDict\n)RtR";
}
std::string View(int64_t numel, int64_t offset,
                 const std::vector<int64_t>& sizes,
                 const std::vector<int64_t>& strides, bool legacy = false) {
  return kRebuild + FloatPid(numel, legacy) +
         RebuildTail(offset, sizes, strides);
}
// {'w': <view>} as a whole pickle.
std::string OneTensorPickle(const std::string& view) {
  return "\x80\x02}" + Str("w") + view + "s.";
}

void WriteZipCheckpoint(const std::string& path, const std::string& pickle,
                        const std::string& storage0) {
  absl::StatusOr<std::unique_ptr<ZipWriter>> zip = ZipWriter::Create(path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  ASSERT_TRUE((*zip)->AddEntry("archive/data.pkl", pickle).ok());
  ASSERT_TRUE((*zip)->AddEntry("archive/data/0", storage0).ok());
  ASSERT_TRUE((*zip)->Finish().ok());
}

std::string Floats(int64_t n) {
  std::string out(n * 4, '\0');
  float* f = reinterpret_cast<float*>(out.data());
  for (int64_t i = 0; i < n; ++i) f[i] = 0.5f + static_cast<float>(i);
  return out;
}

TEST(TorchCheckpointHostileTest, TinyTensorOverHugeStorageReadsOnlyItsPrefix) {
  constexpr int64_t kNumel = int64_t{4} << 20;  // 16 MB of floats.
  const std::string storage = Floats(kNumel);
  // {'w': storage[1:3], 'v': storage[0:2]}: three elements are needed.
  const std::string pickle = "\x80\x02}(" + Str("w") +
                             View(kNumel, 1, {2}, {1}) + Str("v") +
                             View(kNumel, 0, {2}, {1}) + "u.";
  const std::string zip_path = TempPath("tiny_over_huge.pth");
  WriteZipCheckpoint(zip_path, pickle, storage);

  // The legacy stream: magic, protocol, sys_info, root, keys, storages.
  const std::string magic(
      "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8"
      "\x50\x19\x2e",
      15);
  std::string legacy = magic + "\x80\x02M\xe9\x03." + "\x80\x02}.";
  legacy += "\x80\x02}(" + Str("w") + View(kNumel, 1, {2}, {1}, true) +
            Str("v") + View(kNumel, 0, {2}, {1}, true) + "u.";
  legacy += "\x80\x02]" + Str("0") + "a.";
  legacy += std::string(reinterpret_cast<const char*>(&kNumel), 8) + storage;
  const std::string legacy_path = TempPath("tiny_over_huge_legacy.pth");
  WriteFile(legacy_path, legacy);

  for (const std::string& path : {zip_path, legacy_path}) {
    SCOPED_TRACE(path);
    absl::StatusOr<StateDict> sd = ReadStateDict(path);
    ASSERT_TRUE(sd.ok()) << sd.status();
    auto m = AsMap(*sd);
    EXPECT_TRUE(at::equal(m["w"], at::tensor({1.5f, 2.5f})));
    EXPECT_TRUE(at::equal(m["v"], at::tensor({0.5f, 1.5f})));
    // One shared storage of 3 floats, not the 16 MB entry.
    EXPECT_EQ(m["w"].storage().nbytes(), 12u);
    EXPECT_EQ(m["w"].storage().data(), m["v"].storage().data());
  }
}

TEST(TorchCheckpointHostileTest, RefusesHostileViewsWithoutAborting) {
  constexpr int64_t kBig = int64_t{1} << 40;
  const std::string storage = Floats(16);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {View(16, 0, {0}, {-1}), "negative size or stride"},
      {View(16, 0, {kBig, kBig}, {0, 0}), "element count overflows"},
      {kRebuild + View(16, 0, {4, 4}, {4, 1}) + RebuildTail(0, {2}, {1}),
       "expects a storage, got a view"},
      {View(16, 8, {3, 3}, {4, 1}), "exceeds its storage"},
  };
  const std::string path = TempPath("hostile_view.pth");
  for (const auto& [view, message] : cases) {
    SCOPED_TRACE(message);
    WriteZipCheckpoint(path, OneTensorPickle(view), storage);
    absl::StatusOr<Value> root = ReadCheckpoint(path);
    ASSERT_FALSE(root.ok());
    EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(root.status().message().find(message), std::string::npos)
        << root.status();
    EXPECT_NE(root.status().message().find(path + ":archive/data.pkl"),
              std::string::npos)
        << root.status();
  }

  // Views edited after reading are checked again before LibTorch sees them.
  WriteZipCheckpoint(path, OneTensorPickle(View(16, 2, {2, 3}, {3, 1})),
                     storage);
  absl::StatusOr<Value> root = ReadCheckpoint(path);
  ASSERT_TRUE(root.ok()) << root.status();
  const Value& w = *root->Get("w");
  ASSERT_TRUE(ToTensor(w).ok());
  TensorRef& ref = *w.tensor_ptr();
  const TensorRef good = ref;
  struct Edit {
    std::vector<int64_t> sizes, strides;
    int64_t offset;
    const char* message;
  };
  for (const Edit& e : std::vector<Edit>{
           {{0}, {-1}, 0, "negative size or stride"},
           {{kBig, kBig}, {0, 0}, 0, "element count overflows"},
           {{2, 3}, {3}, 0, "different lengths"},
           {{1000}, {1}, 0, "reaches 1000 elements but 8 are loaded"},
           {{2}, {1}, -3, "negative storage offset"},
       }) {
    SCOPED_TRACE(e.message);
    ref.sizes = e.sizes;
    ref.strides = e.strides;
    ref.storage_offset = e.offset;
    absl::StatusOr<at::Tensor> t = ToTensor(w);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find(e.message), std::string::npos)
        << t.status();
    EXPECT_NE(t.status().message().find("storage '0'"), std::string::npos);
    absl::StatusOr<StateDict> sd = ToStateDict(*root, {}, path);
    ASSERT_FALSE(sd.ok());
    EXPECT_NE(sd.status().message().find(path + ": 'w'"), std::string::npos)
        << sd.status();
  }
  ref = good;
  absl::StatusOr<at::Tensor> t = ToTensor(w);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(at::equal(*t, at::arange(2, 8).reshape({2, 3}) + 0.5));
}

TEST(TorchCheckpointHostileTest, RefusesSelfReferentialCheckpoints) {
  const std::string path = TempPath("cyclic.pth");
  WriteZipCheckpoint(path,
                     "\x80\x02}" + std::string("q\0", 2) + Str("self") +
                         std::string("h\0s.", 4),
                     Floats(1));
  absl::StatusOr<Value> root = ReadCheckpoint(path);
  ASSERT_FALSE(root.ok());
  EXPECT_NE(root.status().message().find("self-referential"), std::string::npos)
      << root.status();
  EXPECT_NE(root.status().message().find(path), std::string::npos);

  // A persistent id holding a list that holds itself eight times: the error
  // message that renders it stays short.
  std::string pickle = "\x80\x02]" + std::string("q\0", 2) + "(";
  for (int i = 0; i < 8; ++i) pickle += std::string("h\0", 2);
  pickle += "e\x85Q.";
  WriteZipCheckpoint(path, pickle, Floats(1));
  root = ReadCheckpoint(path);
  ASSERT_FALSE(root.ok());
  EXPECT_NE(root.status().message().find("unsupported persistent id ([[...], "),
            std::string::npos)
      << root.status();
  EXPECT_LT(root.status().message().size(), 1000u);
}

}  // namespace
}  // namespace dmue::io
