#include "dmue/io/pickle.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dmue/io/value.h"
#include "gtest/gtest.h"

namespace dmue::io {
namespace {

// A string literal with its embedded NULs.
template <size_t N>
std::string B(const char (&s)[N]) {
  return std::string(s, N - 1);
}

absl::StatusOr<Value> Load(const std::string& bytes,
                           UnpickleOptions options = {}) {
  if (options.filename.empty()) options.filename = "test.pkl";
  absl::StatusOr<UnpickleResult> r = Unpickle(bytes, options);
  if (!r.ok()) return r.status();
  EXPECT_EQ(r->consumed, bytes.size());
  return r->value;
}

// Structural equality, for round trips.
bool Same(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kBool:
      return a.as_bool() == b.as_bool();
    case Value::Kind::kInt:
      return a.as_int() == b.as_int();
    case Value::Kind::kDouble:
      return a.as_double() == b.as_double();
    case Value::Kind::kString:
    case Value::Kind::kBytes:
    case Value::Kind::kGlobal:
      return a.as_string() == b.as_string();
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!Same(a.items()[i], b.items()[i])) return false;
      }
      return true;
    case Value::Kind::kDict:
      if (a.dict().size() != b.dict().size() ||
          a.dict().ordered() != b.dict().ordered()) {
        return false;
      }
      for (size_t i = 0; i < a.dict().size(); ++i) {
        if (!Same(a.dict().entries()[i].first, b.dict().entries()[i].first) ||
            !Same(a.dict().entries()[i].second, b.dict().entries()[i].second)) {
          return false;
        }
      }
      return true;
    case Value::Kind::kTensor:
      return a.tensor().sizes == b.tensor().sizes &&
             a.tensor().strides == b.tensor().strides &&
             a.tensor().storage_offset == b.tensor().storage_offset;
  }
  return false;
}

Value Sample() {
  Value root = Value::MakeDict();
  Dict& d = root.mutable_dict();
  d.Set(Value::String("epoch"), Value::Int(17));
  Value ints = Value::MakeList();
  for (int64_t v :
       {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{255}, int64_t{256},
        int64_t{65535}, int64_t{65536}, int64_t{-65536}, int64_t{2147483647},
        int64_t{-2147483648LL}, int64_t{2147483648LL}, int64_t{-2147483649LL},
        std::numeric_limits<int64_t>::max(),
        std::numeric_limits<int64_t>::min()}) {
    ints.mutable_items().push_back(Value::Int(v));
  }
  d.Set(Value::String("ints"), ints);
  d.Set(Value::String("lr"), Value::Double(0.1));
  d.Set(Value::String("neg"), Value::Double(-1e-300));
  d.Set(Value::String("name"), Value::String("dmue \xc3\xa9"));
  d.Set(Value::String("blob"), Value::Bytes(std::string("\0\1\2", 3)));
  d.Set(Value::String("none"), Value::None());
  d.Set(Value::String("flags"),
        Value::MakeTuple({Value::Bool(true), Value::Bool(false)}));
  for (int n = 0; n <= 5; ++n) {
    std::vector<Value> items;
    for (int i = 0; i < n; ++i) items.push_back(Value::Int(i));
    d.Set(Value::Int(100 + n), Value::MakeTuple(items));
  }
  Value big = Value::MakeList();
  for (int i = 0; i < 2500; ++i) big.mutable_items().push_back(Value::Int(i));
  d.Set(Value::String("big"), big);
  Value ordered = Value::MakeDict(/*ordered=*/true);
  for (int i = 0; i < 1500; ++i) {
    ordered.mutable_dict().Set(Value::String("k" + std::to_string(i)),
                               Value::Int(i));
  }
  d.Set(Value::String("ordered"), ordered);
  d.Set(Value::String("empty_list"), Value::MakeList());
  d.Set(Value::String("empty_dict"), Value::MakeDict());
  return root;
}

TEST(PickleTest, RoundTripsNestedValues) {
  const Value root = Sample();
  absl::StatusOr<std::string> bytes = Pickle(root, {});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[1]), 3);  // Holds bytes.
  absl::StatusOr<Value> back = Load(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(Same(root, *back)) << back->DebugString();
  EXPECT_EQ(back->Get("ordered")->dict().size(), 1500u);
  EXPECT_EQ(back->Get("ordered")->dict().entries()[1499].second.as_int(), 1499);
}

TEST(PickleTest, UsesProtocol2WithoutBytes) {
  Value root = Value::MakeList({Value::Int(1)});
  absl::StatusOr<std::string> bytes = Pickle(root, {});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, B("\x80\x02](K\x01\x65."));
}

TEST(PickleTest, Protocol4Opcodes) {
  // {'a': b'xy', 'b': [OrderedDict(), OrderedDict()]} with FRAME, MEMOIZE,
  // STACK_GLOBAL, SHORT_BINUNICODE, SHORT_BINBYTES, DUP, POP, POP_MARK.
  std::string p;
  p += "\x80\x04";
  p += "\x95";
  p += std::string("\x00\x00\x00\x00\x00\x00\x00\x00", 8);  // Frame length.
  p += "}\x94";  // EMPTY_DICT MEMOIZE
  p += "(";      // MARK
  p += "\x8c\x01"
       "a\x94";
  p += "C\x02xy\x94";
  p += "\x8c\x01"
       "b";
  p += "]";
  p += "(";
  p += "\x8c\x0b"
       "collections";
  p += "\x8c\x0bOrderedDict";
  p += "\x93\x94)R";  // STACK_GLOBAL MEMOIZE EMPTY_TUPLE REDUCE
  p += "2";           // DUP
  p += "N0";          // NONE POP
  p += "(K\x05"
       "1";         // MARK 5 POP_MARK
  p += "e";         // APPENDS
  p += "u";         // SETITEMS
  p += B("h\x00");  // BINGET 0 (the dict) ...
  p += "0";         // ... popped again.
  p += ".";
  absl::StatusOr<Value> v = Load(p);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_dict());
  EXPECT_EQ(v->Get("a")->as_bytes(), "xy");
  const Value* b = v->Get("b");
  ASSERT_TRUE(b != nullptr && b->is_list());
  ASSERT_EQ(b->items().size(), 2u);
  EXPECT_TRUE(b->items()[0].is_dict());
  EXPECT_TRUE(b->items()[0].dict().ordered());
}

TEST(PickleTest, ClassicOpcodesAndSharedMemo) {
  // l = []; d = {'x': l, 'y': l}; l.append(1) -- through memo: both see it.
  std::string p =
      B("\x80\x02(X\x01\x00\x00\x00x]r\x07\x00\x00\x00"
        "X\x01\x00\x00\x00yj\x07\x00\x00\x00"
        "d");
  p +=
      B("j\x07\x00\x00\x00K\x01"
        "a0");
  p += B("U\x02zzG\x3f\xf8\x00\x00\x00\x00\x00\x00s");  // d['zz'] = 1.5
  p += B("T\x01\x00\x00\x00w\x8a\x01\xffs");            // d['w'] = -1 (LONG1)
  p += B("K\x07\x8b\x02\x00\x00\x00\x00\x01s");         // d[7] = 256 (LONG4)
  p += B("\x88\x88\x89\x86s");  // d[True] = (True, False)
  p += ".";
  absl::StatusOr<Value> v = Load(p);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->Get("x")->items().size(), 1u);
  EXPECT_EQ(v->Get("y")->items()[0].as_int(), 1);
  EXPECT_EQ(v->Get("zz")->as_double(), 1.5);
  EXPECT_EQ(v->Get("w")->as_int(), -1);
  EXPECT_EQ(v->dict().Find(7)->as_int(), 256);
  EXPECT_EQ(v->dict().Find(1)->items().size(), 2u);  // True == 1.
}

TEST(PickleTest, RefusesGlobalsOutsideTheWhitelist) {
  const std::string system_call =
      B("\x80\x02"
        "cposix\nsystem\nX\x04\x00\x00\x00"
        "echo\x85R.");
  UnpickleOptions options;
  options.filename = "evil.pkl";
  absl::StatusOr<UnpickleResult> r = Unpickle(system_call, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("posix.system"), std::string::npos);
  EXPECT_NE(r.status().message().find("evil.pkl"), std::string::npos);

  const std::string eval_call =
      B("\x80\x04\x8c\x08"
        "builtins\x8c\x04"
        "eval\x93X\x01\x00\x00\x00"
        "1\x85R.");
  r = Unpickle(eval_call, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("builtins.eval"), std::string::npos);
  EXPECT_FALSE(IsAllowedGlobal("os.system"));
  EXPECT_TRUE(IsAllowedGlobal("torch._utils._rebuild_tensor_v2"));
}

TEST(PickleTest, RefusesCallingNonCallables) {
  // torch.FloatStorage is allowed as a name, never as a call.
  const std::string p =
      "\x80\x02"
      "ctorch\nFloatStorage\n)R.";
  absl::StatusOr<Value> v = Load(p);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("cannot be called"), std::string::npos);
}

// A pickle with one tensor, as torch 1.13 writes it.
std::string TensorPickle(int offset, int size, int stride) {
  std::string p =
      "\x80\x02"
      "ctorch._utils\n_rebuild_tensor_v2\n(";
  p +=
      B("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
        "0X\x03\x00\x00\x00"
        "cpuK\x0atQ");
  p += "K" + std::string(1, static_cast<char>(offset));
  p += "K" + std::string(1, static_cast<char>(size)) + "\x85";
  p += "K" + std::string(1, static_cast<char>(stride)) + "\x85";
  p += "\x89"
       "ccollections\nOrderedDict\n)RtR.";
  return p;
}

UnpickleOptions StorageOptions(int* calls) {
  UnpickleOptions options;
  options.filename = "t.pkl";
  options.persistent_load = [calls](const Value& pid) -> absl::StatusOr<Value> {
    ++*calls;
    EXPECT_TRUE(pid.is_tuple());
    EXPECT_EQ(pid.items()[1].global_name(), "torch.FloatStorage");
    auto storage = std::make_shared<Storage>();
    storage->key = pid.items()[2].as_string();
    storage->numel = pid.items()[4].as_int();
    auto ref = std::make_shared<TensorRef>();
    ref->storage = storage;
    ref->sizes = {storage->numel};
    ref->strides = {1};
    return Value::Tensor(ref);
  };
  return options;
}

TEST(PickleTest, RebuildsTensorViews) {
  int calls = 0;
  absl::StatusOr<Value> v = Load(TensorPickle(1, 3, 3), StorageOptions(&calls));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(v->is_tensor());
  EXPECT_EQ(v->tensor().storage_offset, 1);
  EXPECT_EQ(v->tensor().sizes, std::vector<int64_t>{3});
  EXPECT_EQ(v->tensor().strides, std::vector<int64_t>{3});
  EXPECT_EQ(v->tensor().storage->key, "0");
}

TEST(PickleTest, RejectsViewsOutsideTheStorage) {
  int calls = 0;
  // Offset 1 + 3 elements of stride 5 reach element 11 of a 10-element storage.
  absl::StatusOr<Value> v = Load(TensorPickle(1, 3, 5), StorageOptions(&calls));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("exceeds"), std::string::npos);
  v = Load(TensorPickle(11, 0, 1), StorageOptions(&calls));
  EXPECT_FALSE(v.ok());
  v = Load(TensorPickle(10, 0, 1), StorageOptions(&calls));  // Empty: fine.
  EXPECT_TRUE(v.ok()) << v.status();
}

TEST(PickleTest, PersistentIdWithoutHandlerFails) {
  EXPECT_FALSE(Load(TensorPickle(0, 1, 1)).ok());
}

TEST(PickleTest, EveryTruncationIsAnError) {
  absl::StatusOr<std::string> bytes = Pickle(Sample(), {});
  ASSERT_TRUE(bytes.ok());
  for (size_t n = 0; n < bytes->size(); n += (n < 200 ? 1 : 97)) {
    absl::StatusOr<UnpickleResult> r =
        Unpickle(absl::string_view(*bytes).substr(0, n), {});
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange) << n;
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
  }
}

TEST(PickleTest, HugeLengthFieldsDoNotAllocate) {
  // BINUNICODE8 claiming 2^62 bytes.
  const std::string p = std::string("\x80\x04\x8d", 3) +
                        std::string("\x00\x00\x00\x00\x00\x00\x00\x40", 8) +
                        "ab";
  absl::StatusOr<UnpickleResult> r = Unpickle(p, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
}

TEST(PickleTest, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  const std::string ops =
      "()0124JKMNQRTUXabcdehjlqrstu}]G\x80\x85\x86\x87\x88\x89\x8a\x8c\x93\x94";
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string p = "\x80\x02";
    const int n = static_cast<int>(rng() % 40);
    for (int j = 0; j < n; ++j) {
      p.push_back(rng() % 2 ? ops[rng() % ops.size()]
                            : static_cast<char>(rng() % 256));
    }
    p.push_back('.');
    ok += Unpickle(p, {}).ok();
  }
  SUCCEED() << ok << " random pickles parsed";
}

TEST(PickleTest, DeepNestingDoesNotOverflowTheStack) {
  // 300k nested tuples: (((...))) built with MARKs ...
  const int kDepth = 300000;
  std::string p = "\x80\x02" + std::string(kDepth, '(') + "]" +
                  std::string(kDepth, 't') + ".";
  absl::StatusOr<Value> v = Load(p);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->DebugString().empty());
  EXPECT_FALSE(Pickle(*v, {}).ok());  // Too deep to write back.
  // ... and a million lists chained through the memo: root.append(l1),
  // l1.append(l2), ... (stack: root, current).
  std::string q = "\x80\x02]2";
  for (int i = 0; i < 1000000; ++i)
    q +=
        B("]q\x01"
          "a0h\x01");
  q += "0.";
  absl::StatusOr<Value> chain = Load(q);
  ASSERT_TRUE(chain.ok()) << chain.status();
  const Value* node = &*chain;
  int depth = 0;
  while (node->is_list() && !node->items().empty()) {
    node = &node->items()[0];
    ++depth;
  }
  EXPECT_EQ(depth, 1000000);
}

TEST(PickleTest, RefusesCyclesWhenWriting) {
  Value list = Value::MakeList();
  list.mutable_items().push_back(list);  // A cycle (leaks; fine in a test).
  EXPECT_FALSE(Pickle(list, {}).ok());
}

}  // namespace
}  // namespace dmue::io
