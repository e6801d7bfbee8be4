#include "dmue/io/pickle.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dmue/base/status_macros.h"
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
  ASSIGN_OR_RETURN(UnpickleResult r, Unpickle(bytes, options));
  EXPECT_EQ(r.consumed, bytes.size());
  return r.value;
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
  list.mutable_items().push_back(list);  // A cycle.
  EXPECT_FALSE(Pickle(list, {}).ok());
  list.mutable_items().clear();  // Broken again, so LeakSanitizer stays quiet.
}

// --- Hostile pickles ------------------------------------------------------

std::string Le32(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}
// LONG1 with 8 bytes: any int64.
std::string Int64(int64_t v) {
  std::string out = "\x8a\x08";
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  return out;
}
std::string Str(const std::string& s) { return "X" + Le32(s.size()) + s; }
std::string Get(uint32_t i) { return "j" + Le32(i); }  // LONG_BINGET
std::string Put(uint32_t i) { return "r" + Le32(i); }  // LONG_BINPUT
std::string IntTuple(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (int64_t x : v) out += Int64(x);
  return out + "t";
}

// The arguments of _rebuild_tensor_v2 after its storage, then the call.
std::string RebuildTail(int64_t offset, const std::vector<int64_t>& sizes,
                        const std::vector<int64_t>& strides) {
  return Int64(offset) + IntTuple(sizes) + IntTuple(strides) +
         "\x89"
         "ccollections\nOrderedDict\n)RtR";
}
constexpr char kRebuild[] = "ctorch._utils\n_rebuild_tensor_v2\n(";
std::string StoragePid(int64_t numel) {
  return "(" + Str("storage") + "ctorch\nFloatStorage\n" + Str("0") +
         Str("cpu") + Int64(numel) + "tQ";
}
std::string ViewPickle(int64_t numel, int64_t offset,
                       const std::vector<int64_t>& sizes,
                       const std::vector<int64_t>& strides) {
  return std::string("\x80\x02") + kRebuild + StoragePid(numel) +
         RebuildTail(offset, sizes, strides) + ".";
}

TEST(PickleHostileTest, RepeatedStringsAreSharedNotCopied) {
  // An 8 KB string, then 1000 references to it through BINGET and
  // LONG_BINGET: an 11 KB pickle whose copies would take 8 MB.
  const std::string big(8192, 'x');
  std::string p = "\x80\x02]" + Str(big) + B("q\x00") + "0(";
  for (int i = 0; i < 1000; ++i) p += i % 3 == 0 ? Get(0) : B("h\x00");
  p += "e.";
  ASSERT_LT(p.size(), 12000u);
  UnpickleOptions options;
  options.filename = "shared.pkl";
  options.max_memory_bytes = 1 << 20;
  absl::StatusOr<UnpickleResult> r = Unpickle(p, options);
  ASSERT_TRUE(r.ok()) << r.status();
  const Value::List& items = r->value.items();
  ASSERT_EQ(items.size(), 1000u);
  for (const Value& item : items) {
    ASSERT_EQ(item.as_string().size(), big.size());
    EXPECT_EQ(item.as_string().data(), items[0].as_string().data());
  }
  // DUP shares too.
  std::string d = "\x80\x02" + Str(big) + "2\x86.";
  r = Unpickle(d, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value.items()[0].as_string().data(),
            r->value.items()[1].as_string().data());
}

TEST(PickleHostileTest, AmplifyingCallsHitTheMemoryBudget) {
  // pairs = [(0, None), ..., (999, None)] once, then OrderedDict(pairs)
  // 20000 times, each appended to a list: 120 KB that would build 20 million
  // dict entries (gigabytes).
  std::string p = "\x80\x02](";
  for (int i = 0; i < 1000; ++i) {
    p += "M" + std::string(1, static_cast<char>(i & 0xff)) +
         std::string(1, static_cast<char>(i >> 8)) + "N\x86";
  }
  p += "l\x85" + Put(1) + "0";  // args = (pairs,), memo 1.
  p += "ccollections\nOrderedDict\n" + Put(2) + "0";
  for (int i = 0; i < 20000; ++i) p += Get(2) + Get(1) + "Ra";
  p += ".";
  UnpickleOptions options;
  options.filename = "amplify.pkl";
  absl::StatusOr<UnpickleResult> r = Unpickle(p, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("amplify.pkl"), std::string::npos);
  EXPECT_NE(r.status().message().find("budget"), std::string::npos);
  EXPECT_NE(r.status().message().find("REDUCE"), std::string::npos)
      << r.status();
  // The default budget is 64 bytes per input byte plus 64 MiB.
  EXPECT_EQ(DefaultUnpickleBudget(p.size()),
            64 * p.size() + (uint64_t{64} << 20));
  EXPECT_EQ(DefaultUnpickleBudget(std::numeric_limits<uint64_t>::max()),
            std::numeric_limits<uint64_t>::max());
}

TEST(PickleHostileTest, RefusesSelfReferentialValues) {
  const std::string cases[] = {
      "\x80\x02]2a.",                                    // l = []; l.append(l)
      B("\x80\x02}q\x00") + Str("self") + B("h\x00s."),  // d['self'] = d
      "\x80\x02]2a0N.",  // ... and dropped again
      "\x80\x02]2\x85"
      "a.",  // l.append((l,))
  };
  for (const std::string& p : cases) {
    UnpickleOptions options;
    options.filename = "cycle.pkl";
    absl::StatusOr<UnpickleResult> r = Unpickle(p, options);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("self-referential"), std::string::npos)
        << r.status();
    EXPECT_NE(r.status().message().find("cycle.pkl"), std::string::npos);
  }
  // Shared but acyclic is fine: [l, l].
  EXPECT_TRUE(Load(B("\x80\x02]q\x00h\x00\x86.")).ok());

  // The refused cycle is freed: a tensor inside it must not outlive the load.
  std::weak_ptr<TensorRef> inside;
  UnpickleOptions options;
  options.persistent_load = [&inside](const Value&) -> absl::StatusOr<Value> {
    auto ref = std::make_shared<TensorRef>();
    inside = ref;
    return Value::Tensor(ref);
  };
  absl::StatusOr<UnpickleResult> r = Unpickle("\x80\x02]2aNQa.", options);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(inside.expired());
  // Failing half-way frees it too.
  r = Unpickle("\x80\x02]2aNQa", options);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(inside.expired());
}

// A list of 8 references to a list of 8 references ... `levels` deep:
// 8^levels paths from a pickle of a few hundred bytes.
std::string SharedLevelsPickle(int levels, int fanout) {
  std::string p = "\x80\x02N";  // The innermost value.
  for (int i = 0; i < levels; ++i) {
    p += Put(i) + "0](";
    for (int j = 0; j < fanout; ++j) p += Get(i);
    p += "e";
  }
  return p + ".";
}

// Frees a cyclic value built by a test.
void BreakCycle(Value& v) {
  if (v.is_list()) v.mutable_items().clear();
  if (v.is_dict()) v.mutable_dict().Clear();
}

TEST(PickleHostileTest, DebugStringIsBoundedOnCyclesAndSharedGraphs) {
  Value list = Value::MakeList();
  list.mutable_items().push_back(list);
  EXPECT_EQ(list.DebugString(), "[[...]]");  // As Python prints it.
  Value dict = Value::MakeDict();
  dict.mutable_dict().Set(Value::String("self"), dict);
  EXPECT_EQ(dict.DebugString(), "{'self': {...}}");
  Value wide = Value::MakeList();
  for (int i = 0; i < 8; ++i) wide.mutable_items().push_back(wide);
  EXPECT_LE(wide.DebugString().size(), Value::kMaxDebugChars + 512);
  BreakCycle(list);
  BreakCycle(dict);
  BreakCycle(wide);

  absl::StatusOr<Value> dag = Load(SharedLevelsPickle(40, 8));
  ASSERT_TRUE(dag.ok()) << dag.status();
  const std::string text = dag->DebugString();
  EXPECT_LE(text.size(), Value::kMaxDebugChars + 512);
  EXPECT_NE(text.find("items)"), std::string::npos) << text;

  const std::string long_string =
      Value::String(std::string(1 << 20, 'a')).DebugString();
  EXPECT_LT(long_string.size(), 200u);
  EXPECT_NE(long_string.find("1048576 bytes"), std::string::npos);
}

TEST(PickleHostileTest, WalksVisitSharedNodesOnce) {
  absl::StatusOr<Value> dag = Load(SharedLevelsPickle(40, 8));
  ASSERT_TRUE(dag.ok()) << dag.status();
  int64_t first = 0, again = 0;
  ForEachNode(*dag, [&](const Value&, bool is_first) {
    (is_first ? first : again) += 1;
  });
  EXPECT_EQ(first, 48);      // 40 lists and the 8 Nones of the last.
  EXPECT_EQ(again, 39 * 7);  // The other references of each level.
  EXPECT_FALSE(HasCycle({*dag}));

  Value list = Value::MakeList({Value::Int(1)});
  Value outer = Value::MakeTuple({list});
  EXPECT_FALSE(HasCycle({outer}));
  list.mutable_items().push_back(outer);  // list -> tuple -> list.
  EXPECT_TRUE(HasCycle({outer}));
  int visits = 0;
  ForEachNode(outer, [&](const Value&, bool) { ++visits; });
  EXPECT_EQ(visits, 4);  // outer, list, 1, outer again.
  BreakCycle(list);
}

TEST(PickleHostileTest, OutlineListsSharedAndCyclicValuesOnce) {
  absl::StatusOr<Value> dag = Load(SharedLevelsPickle(40, 2));
  ASSERT_TRUE(dag.ok()) << dag.status();
  std::vector<std::string> lines;
  auto collect = [&lines](const std::string& line) { lines.push_back(line); };
  OutlineStats stats = Outline(*dag, {}, collect);
  EXPECT_FALSE(stats.truncated);
  // 2^40 paths, but each list is expanded once: the two Nones at the
  // bottom, then one "same object" line per level above.
  EXPECT_EQ(stats.lines, 41) << lines.back();
  auto zeros = [](int n) {
    std::string path = "0";
    for (int i = 1; i < n; ++i) path += ".0";
    return path;
  };
  EXPECT_EQ(lines[0], zeros(40) + "  None = None");
  EXPECT_EQ(lines[1], zeros(39) + ".1  None = None");
  EXPECT_EQ(lines[2], zeros(38) + ".1  -> same object as " + zeros(39));
  EXPECT_EQ(lines[40], "1  -> same object as 0");

  Value root = Value::MakeDict();
  Value list = Value::MakeList({Value::Int(3)});
  root.mutable_dict().Set(Value::String("a"), list);
  list.mutable_items().push_back(root);
  lines.clear();
  stats = Outline(root, {}, collect);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "a.0  int = 3");
  EXPECT_EQ(lines[1], "a.1  -> same object as <root>");
  BreakCycle(list);

  Value many = Value::MakeList();
  for (int i = 0; i < 1000; ++i) many.mutable_items().push_back(Value::Int(i));
  lines.clear();
  OutlineOptions options;
  options.max_lines = 10;
  stats = Outline(many, options, collect);
  EXPECT_TRUE(stats.truncated);
  EXPECT_EQ(stats.lines, 10);
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_EQ(lines.back(), "... (listing truncated after 10 lines)");
  options.max_lines = 100000;
  options.max_bytes = 100;
  lines.clear();
  stats = Outline(many, options, collect);
  EXPECT_TRUE(stats.truncated);
  EXPECT_LT(stats.lines, 20);
}

TEST(PickleHostileTest, PicklesSharedValuesOnce) {
  absl::StatusOr<Value> dag = Load(SharedLevelsPickle(40, 8));
  ASSERT_TRUE(dag.ok()) << dag.status();
  absl::StatusOr<std::string> bytes = Pickle(*dag, {});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_LT(bytes->size(), 2000u);  // Not 8^40 copies.
  absl::StatusOr<Value> back = Load(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->items()[0].identity(), back->items()[7].identity());
  int64_t first = 0;
  ForEachNode(*back, [&](const Value&, bool is_first) { first += is_first; });
  EXPECT_EQ(first, 48);
}

UnpickleOptions FloatStorages() {
  static int unused = 0;  // Outlives the options.
  return StorageOptions(&unused);
}

TEST(PickleHostileTest, RefusesViewsLibTorchWouldThrowOn) {
  struct Case {
    const char* what;
    std::string pickle;
    const char* message;
  };
  constexpr int64_t kBig = int64_t{1} << 40;
  std::vector<Case> cases = {
      {"empty with a negative stride", ViewPickle(10, 0, {0}, {-1}),
       "negative size or stride"},
      {"negative size", ViewPickle(10, 0, {-1}, {1}), "negative size"},
      {"element count overflows",
       ViewPickle(10, 0, {kBig, kBig, kBig}, {0, 0, 0}),
       "element count overflows"},
      {"byte count overflows", ViewPickle(10, 0, {int64_t{1} << 62}, {0}),
       "byte count overflows"},
      {"largest offset overflows",
       ViewPickle(10, 3, {2, 2}, {std::numeric_limits<int64_t>::max(), 1}),
       "largest offset overflows"},
      {"extent overflows",
       ViewPickle(10, 3, {2}, {std::numeric_limits<int64_t>::max() - 1}),
       "extent overflows"},
      {"sizes and strides differ", ViewPickle(10, 0, {2, 2}, {1}),
       "different lengths"},
      {"too many dims",
       ViewPickle(10, 0, std::vector<int64_t>(65, 1),
                  std::vector<int64_t>(65, 1)),
       "more than 64"},
      {"view over a 2-d view",
       std::string("\x80\x02") + kRebuild + kRebuild + StoragePid(10) +
           RebuildTail(0, {2, 5}, {5, 1}) + RebuildTail(0, {3}, {1}) + ".",
       "expects a storage, got a view"},
      {"view over a strided view",
       std::string("\x80\x02") + kRebuild + kRebuild + StoragePid(10) +
           RebuildTail(0, {5}, {2}) + RebuildTail(0, {3}, {1}) + ".",
       "expects a storage, got a view"},
      {"view past a slice",
       std::string("\x80\x02") + kRebuild + kRebuild + StoragePid(10) +
           RebuildTail(2, {4}, {1}) + RebuildTail(1, {4}, {1}) + ".",
       "exceeds its storage of 4 elements"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<Value> v = Load(c.pickle, FloatStorages());
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find(c.message), std::string::npos)
        << v.status();
    EXPECT_NE(v.status().message().find("REDUCE"), std::string::npos)
        << v.status();
  }
  // A contiguous slice rebuilt over again keeps its offsets: elements 3-5.
  absl::StatusOr<Value> v =
      Load(std::string("\x80\x02") + kRebuild + kRebuild + StoragePid(10) +
               RebuildTail(2, {4}, {1}) + RebuildTail(1, {3}, {1}) + ".",
           FloatStorages());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->tensor().storage_offset, 3);
  // Broadcast (stride 0) views of a fitting size stay allowed.
  EXPECT_TRUE(
      Load(ViewPickle(10, 9, {1000, 1000}, {0, 0}), FloatStorages()).ok());
}

TEST(PickleHostileTest, ComputeViewExtent) {
  absl::StatusOr<ViewExtent> e = ComputeViewExtent({2, 3}, {3, 1}, 4, 4);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->numel, 6);
  EXPECT_EQ(e->extent, 10);
  e = ComputeViewExtent({0, 3}, {3, 1}, 1000, 4);  // Empty: no reach.
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->extent, 0);
  e = ComputeViewExtent({}, {}, 7, 8);  // A scalar.
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->numel, 1);
  EXPECT_EQ(e->extent, 8);
  EXPECT_FALSE(ComputeViewExtent({1}, {1}, -1, 4).ok());
  EXPECT_FALSE(
      ComputeViewExtent({2}, {1}, std::numeric_limits<int64_t>::max(), 4).ok());
}

}  // namespace
}  // namespace dmue::io
