#include "dmue/io/pickle.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dmue/base/status_macros.h"

namespace dmue::io {

namespace {

// Opcodes (Python's pickletools names).
enum Op : unsigned char {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

// Globals whose effect this VM emulates. Nothing else is ever honoured.
constexpr const char* kAllowedGlobals[] = {
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
    "torch._tensor._rebuild_from_type_v2",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "collections.OrderedDict",
    "torch.Size",
    "torch.device",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
};

// A guard against adversarial nesting of rebuild calls.
constexpr int kMaxCallDepth = 8;

// What the budget charges, in bytes, roughly what is allocated: every opcode
// (it pushes at most one value), a new container (control block, vector and
// tracking slot), a memo entry, a dict entry a call copies, a tensor and
// each of its dimensions.
constexpr uint64_t kOpCost = sizeof(Value);
constexpr uint64_t kContainerCost = 96;
constexpr uint64_t kMemoCost = 64;
constexpr uint64_t kEntryCost = 128;
constexpr uint64_t kTensorCost = 128;
constexpr uint64_t kDimCost = 16;

// pickletools' name of `op`, for messages.
const char* OpName(unsigned char op) {
  static constexpr struct {
    unsigned char op;
    const char* name;
  } kNames[] = {
      {kMark, "MARK"},
      {kStop, "STOP"},
      {kPop, "POP"},
      {kPopMark, "POP_MARK"},
      {kDup, "DUP"},
      {kBinInt, "BININT"},
      {kBinInt1, "BININT1"},
      {kBinInt2, "BININT2"},
      {kNone, "NONE"},
      {kBinPersId, "BINPERSID"},
      {kReduce, "REDUCE"},
      {kBinString, "BINSTRING"},
      {kShortBinString, "SHORT_BINSTRING"},
      {kBinUnicode, "BINUNICODE"},
      {kAppend, "APPEND"},
      {kBuild, "BUILD"},
      {kGlobal, "GLOBAL"},
      {kDict, "DICT"},
      {kEmptyDict, "EMPTY_DICT"},
      {kAppends, "APPENDS"},
      {kBinGet, "BINGET"},
      {kLongBinGet, "LONG_BINGET"},
      {kList, "LIST"},
      {kEmptyList, "EMPTY_LIST"},
      {kBinPut, "BINPUT"},
      {kLongBinPut, "LONG_BINPUT"},
      {kSetItem, "SETITEM"},
      {kTuple, "TUPLE"},
      {kEmptyTuple, "EMPTY_TUPLE"},
      {kSetItems, "SETITEMS"},
      {kBinFloat, "BINFLOAT"},
      {kProto, "PROTO"},
      {kNewObj, "NEWOBJ"},
      {kTuple1, "TUPLE1"},
      {kTuple2, "TUPLE2"},
      {kTuple3, "TUPLE3"},
      {kNewTrue, "NEWTRUE"},
      {kNewFalse, "NEWFALSE"},
      {kLong1, "LONG1"},
      {kLong4, "LONG4"},
      {kBinBytes, "BINBYTES"},
      {kShortBinBytes, "SHORT_BINBYTES"},
      {kShortBinUnicode, "SHORT_BINUNICODE"},
      {kBinUnicode8, "BINUNICODE8"},
      {kBinBytes8, "BINBYTES8"},
      {kStackGlobal, "STACK_GLOBAL"},
      {kMemoize, "MEMOIZE"},
      {kFrame, "FRAME"},
  };
  for (const auto& entry : kNames) {
    if (entry.op == op) return entry.name;
  }
  return "unknown";
}

class Machine {
 public:
  Machine(absl::string_view data, const UnpickleOptions& options)
      : data_(data),
        options_(options),
        budget_(options.max_memory_bytes != 0
                    ? options.max_memory_bytes
                    : DefaultUnpickleBudget(data.size())) {}

  // Runs the opcodes, then refuses (and frees) self-referential values.
  absl::StatusOr<UnpickleResult> Run();

 private:
  absl::StatusOr<UnpickleResult> RunOpcodes();

  // Offset in the file of the current position, for messages.
  uint64_t FileOffset(uint64_t pos) const { return options_.base_offset + pos; }

  // "opcode 0x52 (REDUCE)".
  std::string OpString() const {
    return absl::StrFormat("opcode 0x%02x (%s)", static_cast<unsigned>(op_),
                           OpName(op_));
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: bad pickle at offset %d, %s: %s", options_.filename,
        FileOffset(op_pos_), OpString(), what));
  }

  // Counts `bytes` against the budget; past it, the load stops.
  absl::Status Charge(uint64_t bytes) {
    if (bytes <= budget_ - charged_) {
      charged_ += bytes;
      return absl::OkStatus();
    }
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: pickle of %d bytes would need more than its memory budget of %d "
        "bytes (at offset %d, %s); refusing a file that amplifies its size",
        options_.filename, data_.size(), budget_, FileOffset(op_pos_),
        OpString()));
  }

  // A new list or dict: charged, and tracked so that Run() can find and
  // break the cycles that later APPENDs or SETITEMs may close through it.
  absl::Status NewMutable(Value container) {
    RETURN_IF_ERROR(Charge(kContainerCost));
    mutables_.push_back(container);
    stack_.push_back(std::move(container));
    return absl::OkStatus();
  }

  // Empties every tracked container: a reference cycle among shared_ptrs
  // would otherwise never be freed.
  void ReleaseMutables() {
    for (Value& v : mutables_) {
      if (v.is_list()) {
        v.mutable_items().clear();
      } else if (v.is_dict()) {
        v.mutable_dict().Clear();
      }
    }
  }

  absl::Status Truncated(uint64_t need) const {
    return absl::OutOfRangeError(
        absl::StrFormat("%s: truncated pickle: %s at offset %d needs %d more "
                        "bytes at offset %d but the data ends at offset %d",
                        options_.filename, OpString(), FileOffset(op_pos_),
                        need, FileOffset(pos_), FileOffset(data_.size())));
  }

  absl::Status Take(uint64_t n, const unsigned char** out) {
    if (n > data_.size() - pos_) return Truncated(n);
    *out = reinterpret_cast<const unsigned char*>(data_.data()) + pos_;
    pos_ += n;
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status TakeLE(T* out) {
    const unsigned char* p = nullptr;
    RETURN_IF_ERROR(Take(sizeof(T), &p));
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{p[i]} << (8 * i);
    *out = static_cast<T>(v);
    return absl::OkStatus();
  }

  absl::Status TakeLine(std::string* out) {
    constexpr size_t kMaxLine = 512;
    for (size_t i = pos_; i < data_.size() && i - pos_ <= kMaxLine; ++i) {
      if (data_[i] == '\n') {
        out->assign(data_.data() + pos_, i - pos_);
        pos_ = i + 1;
        return absl::OkStatus();
      }
    }
    if (data_.size() - pos_ <= kMaxLine) return Truncated(1);
    return Error("GLOBAL name too long");
  }

  // Reads n bytes and pushes them as a str or bytes value. The bytes exist
  // in the input (checked first), and are charged before they are copied.
  absl::Status PushString(uint64_t n, bool bytes) {
    const unsigned char* p = nullptr;
    RETURN_IF_ERROR(Take(n, &p));
    RETURN_IF_ERROR(Charge(n));
    std::string str(reinterpret_cast<const char*>(p), n);
    stack_.push_back(bytes ? Value::Bytes(std::move(str))
                           : Value::String(std::move(str)));
    return absl::OkStatus();
  }

  absl::Status Pop(Value* out) {
    if (stack_.size() <= StackFloor()) return Error("stack underflow");
    *out = std::move(stack_.back());
    stack_.pop_back();
    return absl::OkStatus();
  }

  size_t StackFloor() const { return marks_.empty() ? 0 : marks_.back(); }

  // Removes everything above the top mark (and the mark).
  absl::Status PopMark(std::vector<Value>* items) {
    if (marks_.empty()) return Error("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    items->assign(std::make_move_iterator(stack_.begin() + mark),
                  std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return absl::OkStatus();
  }

  Value* Top() {
    return stack_.size() > StackFloor() ? &stack_.back() : nullptr;
  }

  absl::Status SetItems(Value& dict, std::vector<Value>& kv) {
    if (!dict.is_dict()) {
      return Error(absl::StrCat("SETITEM(S) on a ", dict.kind_name()));
    }
    if (kv.size() % 2 != 0) return Error("odd number of items for SETITEMS");
    for (size_t i = 0; i < kv.size(); i += 2) {
      if (!dict.mutable_dict().Set(kv[i], std::move(kv[i + 1]))) {
        return Error(absl::StrCat("dict key of type ", kv[i].kind_name(),
                                  " is not supported (only str and int)"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status PushGlobal(const std::string& module, const std::string& name) {
    std::string qualified = absl::StrCat(module, ".", name);
    if (!IsAllowedGlobal(qualified)) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "%s: refusing to load global '%s' (offset %d): only torch tensor "
          "and collection types are allowed; nothing was executed",
          options_.filename, qualified, FileOffset(op_pos_)));
    }
    stack_.push_back(Value::Global(std::move(qualified)));
    return absl::OkStatus();
  }

  absl::StatusOr<Value> Call(const Value& callable, const Value& args,
                             int depth);
  absl::StatusOr<Value> RebuildTensor(const std::vector<Value>& args, bool v2);
  absl::Status IntTuple(const Value& v, absl::string_view what,
                        std::vector<int64_t>* out);

  absl::string_view data_;
  const UnpickleOptions& options_;
  uint64_t pos_ = 0;
  uint64_t op_pos_ = 0;
  unsigned char op_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<Value> mutables_;  // Every list and dict created.
  const uint64_t budget_;
  uint64_t charged_ = 0;
};

absl::Status Machine::IntTuple(const Value& v, absl::string_view what,
                               std::vector<int64_t>* out) {
  if (!v.is_tuple() && !v.is_list()) {
    return Error(absl::StrCat(what, " must be a tuple, not ", v.kind_name()));
  }
  out->clear();
  for (const Value& item : v.items()) {
    if (!item.is_int()) return Error(absl::StrCat(what, " must hold ints"));
    out->push_back(item.as_int());
  }
  return absl::OkStatus();
}

absl::StatusOr<Value> Machine::RebuildTensor(const std::vector<Value>& args,
                                             bool v2) {
  if (args.size() < 4) return Error("too few arguments to _rebuild_tensor");
  if (!args[0].is_tensor()) {
    return Error(absl::StrCat("_rebuild_tensor expects a storage, got ",
                              args[0].kind_name()));
  }
  if (!args[1].is_int()) return Error("storage_offset must be an int");
  const TensorRef& base = args[0].tensor();
  // The base is what persistent_load returned: a flat, contiguous slice of
  // one storage. A view passed in its place (a view over a view) is accepted
  // only when it is such a slice too, so that offsets keep their meaning.
  const int64_t storage_numel = base.storage ? base.storage->numel : 0;
  if (base.sizes.size() != 1 || base.strides.size() != 1 ||
      base.strides[0] != 1 || base.sizes[0] < 0 || base.storage_offset < 0 ||
      base.storage_offset > storage_numel - base.sizes[0]) {
    return Error(absl::StrFormat(
        "_rebuild_tensor expects a storage, got a view of size [%s] stride "
        "[%s] offset %d",
        absl::StrJoin(base.sizes, ","), absl::StrJoin(base.strides, ","),
        base.storage_offset));
  }
  auto ref = std::make_shared<TensorRef>();
  ref->storage = base.storage;
  RETURN_IF_ERROR(IntTuple(args[2], "size", &ref->sizes));
  RETURN_IF_ERROR(IntTuple(args[3], "stride", &ref->strides));
  RETURN_IF_ERROR(Charge(kTensorCost +
                         kDimCost * (ref->sizes.size() + ref->strides.size())));
  if (v2 && args.size() >= 5 && args[4].is_bool()) {
    ref->requires_grad = args[4].as_bool();
  }
  // Offsets are relative to the base slice; every sum is compared with the
  // slice's size before it is formed, so hostile values cannot overflow.
  const int64_t limit = base.sizes[0];
  const int64_t offset = args[1].as_int();
  if (offset < 0 || offset > limit) {
    return Error(absl::StrFormat("storage offset %d is out of range", offset));
  }
  ref->storage_offset = base.storage_offset + offset;
  const int element_size = base.storage ? DTypeSize(base.storage->dtype) : 1;
  absl::StatusOr<ViewExtent> view =
      ComputeViewExtent(ref->sizes, ref->strides, offset, element_size);
  if (!view.ok()) return Error(view.status().message());
  if (view->extent > limit) {
    return Error(absl::StrFormat(
        "tensor of size [%s] stride [%s] offset %d exceeds its storage of %d "
        "elements",
        absl::StrJoin(ref->sizes, ","), absl::StrJoin(ref->strides, ","),
        offset, limit));
  }
  return Value::Tensor(std::move(ref));
}

absl::StatusOr<Value> Machine::Call(const Value& callable, const Value& args,
                                    int depth) {
  if (depth > kMaxCallDepth) return Error("rebuild calls nested too deeply");
  if (!callable.is_global()) {
    return Error(absl::StrCat("cannot call a ", callable.kind_name()));
  }
  if (!args.is_tuple()) {
    return Error(
        absl::StrCat("call arguments must be a tuple, not ", args.kind_name()));
  }
  const std::string& name = callable.global_name();
  const std::vector<Value>& a = args.items();
  if (name == "collections.OrderedDict") {
    // Each call copies its argument's pairs, and the memo can repeat one
    // long list of pairs cheaply: charge every entry.
    RETURN_IF_ERROR(Charge(kContainerCost));
    Value dict = Value::MakeDict(/*ordered=*/true);
    mutables_.push_back(dict);
    if (a.size() == 1 && (a[0].is_list() || a[0].is_tuple())) {
      RETURN_IF_ERROR(Charge(kEntryCost * a[0].items().size()));
      for (const Value& pair : a[0].items()) {
        if (!(pair.is_tuple() || pair.is_list()) || pair.items().size() != 2) {
          return Error("OrderedDict argument must hold pairs");
        }
        if (!dict.mutable_dict().Set(pair.items()[0], pair.items()[1])) {
          return Error("unsupported OrderedDict key type");
        }
      }
    } else if (!a.empty()) {
      return Error("unsupported OrderedDict arguments");
    }
    return dict;
  }
  if (name == "torch._utils._rebuild_tensor_v2") {
    return RebuildTensor(a, /*v2=*/true);
  }
  if (name == "torch._utils._rebuild_tensor") {
    return RebuildTensor(a, /*v2=*/false);
  }
  if (name == "torch._utils._rebuild_parameter") {
    if (a.empty() || !a[0].is_tensor()) {
      return Error("_rebuild_parameter expects a tensor");
    }
    const TensorRef& t = a[0].tensor();
    RETURN_IF_ERROR(
        Charge(kTensorCost + kDimCost * (t.sizes.size() + t.strides.size())));
    auto ref = std::make_shared<TensorRef>(t);
    if (a.size() >= 2 && a[1].is_bool()) ref->requires_grad = a[1].as_bool();
    return Value::Tensor(std::move(ref));
  }
  if (name == "torch._tensor._rebuild_from_type_v2") {
    // (func, new_type, args, state): the type is Tensor or Parameter, which
    // carry nothing we keep; the state only holds Python attributes.
    if (a.size() < 3)
      return Error("too few arguments to _rebuild_from_type_v2");
    if (!a[1].is_global() ||
        (a[1].global_name() != "torch.Tensor" &&
         a[1].global_name() != "torch.nn.parameter.Parameter")) {
      return Error("_rebuild_from_type_v2 with an unsupported type");
    }
    return Call(a[0], a[2], depth + 1);
  }
  if (name == "torch.Size") {
    if (a.size() != 1 || !(a[0].is_tuple() || a[0].is_list())) {
      return Error("torch.Size expects one tuple");
    }
    RETURN_IF_ERROR(Charge(kContainerCost + kOpCost * a[0].items().size()));
    return Value::MakeTuple(a[0].items());
  }
  if (name == "torch.device") {
    if (a.empty() || !a[0].is_string()) return Error("bad torch.device call");
    RETURN_IF_ERROR(Charge(a[0].as_string().size() + 32));
    std::string device = a[0].as_string();
    if (a.size() >= 2 && a[1].is_int())
      absl::StrAppend(&device, ":", a[1].as_int());
    return Value::String(std::move(device));
  }
  return Error(absl::StrCat("global '", name, "' cannot be called"));
}

absl::StatusOr<UnpickleResult> Machine::Run() {
  absl::StatusOr<UnpickleResult> result = RunOpcodes();
  // A cycle anywhere (even in values the pickle dropped again) is refused:
  // no torch file has one, and walks of the result must stay simple.
  if (result.ok() && HasCycle(mutables_)) {
    result = absl::InvalidArgumentError(absl::StrFormat(
        "%s: the pickle at offset %d builds a self-referential value (a "
        "container that contains itself), which checkpoints never hold",
        options_.filename, FileOffset(0)));
  }
  if (!result.ok()) ReleaseMutables();
  return result;
}

absl::StatusOr<UnpickleResult> Machine::RunOpcodes() {
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= data_.size()) {
      op_ = 0;
      return Truncated(1);
    }
    op_ = static_cast<unsigned char>(data_[pos_++]);
    RETURN_IF_ERROR(Charge(kOpCost));
    switch (op_) {
      case kProto: {
        uint8_t version;
        RETURN_IF_ERROR(TakeLE(&version));
        if (version > 5) return Error("unsupported pickle protocol");
        break;
      }
      case kFrame: {
        uint64_t size;  // Framing is only a read-ahead hint.
        RETURN_IF_ERROR(TakeLE(&size));
        break;
      }
      case kStop: {
        Value result;
        if (!marks_.empty()) return Error("STOP with an open MARK");
        RETURN_IF_ERROR(Pop(&result));
        return UnpickleResult{std::move(result), pos_};
      }
      case kMark:
        marks_.push_back(stack_.size());
        break;
      case kPop: {
        Value unused;
        RETURN_IF_ERROR(Pop(&unused));
        break;
      }
      case kPopMark: {
        std::vector<Value> unused;
        RETURN_IF_ERROR(PopMark(&unused));
        break;
      }
      case kDup: {
        Value* top = Top();
        if (top == nullptr) return Error("DUP on an empty stack");
        stack_.push_back(*top);
        break;
      }
      case kNone:
        stack_.push_back(Value::None());
        break;
      case kNewTrue:
        stack_.push_back(Value::Bool(true));
        break;
      case kNewFalse:
        stack_.push_back(Value::Bool(false));
        break;
      case kBinInt: {
        int32_t v;
        RETURN_IF_ERROR(TakeLE(&v));
        stack_.push_back(Value::Int(v));
        break;
      }
      case kBinInt1: {
        uint8_t v;
        RETURN_IF_ERROR(TakeLE(&v));
        stack_.push_back(Value::Int(v));
        break;
      }
      case kBinInt2: {
        uint16_t v;
        RETURN_IF_ERROR(TakeLE(&v));
        stack_.push_back(Value::Int(v));
        break;
      }
      case kLong1:
      case kLong4: {
        uint64_t n;
        if (op_ == kLong1) {
          uint8_t n8;
          RETURN_IF_ERROR(TakeLE(&n8));
          n = n8;
        } else {
          uint32_t n32;
          RETURN_IF_ERROR(TakeLE(&n32));
          n = n32;
        }
        const unsigned char* p = nullptr;
        RETURN_IF_ERROR(Take(n, &p));
        if (n > 8) return Error("integer does not fit in 64 bits");
        uint64_t v = 0;
        for (uint64_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);
        stack_.push_back(Value::Int(static_cast<int64_t>(v)));
        break;
      }
      case kBinFloat: {
        const unsigned char* p = nullptr;
        RETURN_IF_ERROR(Take(8, &p));
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // Big-endian.
        double v;
        std::memcpy(&v, &bits, sizeof(v));
        stack_.push_back(Value::Double(v));
        break;
      }
      case kShortBinString:
      case kShortBinUnicode:
      case kShortBinBytes: {
        uint8_t n;
        RETURN_IF_ERROR(TakeLE(&n));
        RETURN_IF_ERROR(PushString(n, op_ == kShortBinBytes));
        break;
      }
      case kBinString:
      case kBinUnicode:
      case kBinBytes: {
        uint32_t n;
        RETURN_IF_ERROR(TakeLE(&n));
        RETURN_IF_ERROR(PushString(n, op_ == kBinBytes));
        break;
      }
      case kBinUnicode8:
      case kBinBytes8: {
        uint64_t n;
        RETURN_IF_ERROR(TakeLE(&n));
        RETURN_IF_ERROR(PushString(n, op_ == kBinBytes8));
        break;
      }
      case kEmptyTuple:
        stack_.push_back(Value::MakeTuple());
        break;
      case kTuple1:
      case kTuple2:
      case kTuple3: {
        const size_t n = op_ - kTuple1 + 1;
        if (stack_.size() < StackFloor() + n) return Error("stack underflow");
        std::vector<Value> items(std::make_move_iterator(stack_.end() - n),
                                 std::make_move_iterator(stack_.end()));
        stack_.resize(stack_.size() - n);
        stack_.push_back(Value::MakeTuple(std::move(items)));
        break;
      }
      case kTuple:
      case kList: {
        std::vector<Value> items;
        RETURN_IF_ERROR(PopMark(&items));
        if (op_ == kList) {
          RETURN_IF_ERROR(NewMutable(Value::MakeList(std::move(items))));
        } else {
          stack_.push_back(Value::MakeTuple(std::move(items)));
        }
        break;
      }
      case kEmptyList:
        RETURN_IF_ERROR(NewMutable(Value::MakeList()));
        break;
      case kAppend: {
        Value item;
        RETURN_IF_ERROR(Pop(&item));
        Value* list = Top();
        if (list == nullptr || !list->is_list())
          return Error("APPEND to a non-list");
        list->mutable_items().push_back(std::move(item));
        break;
      }
      case kAppends: {
        std::vector<Value> items;
        RETURN_IF_ERROR(PopMark(&items));
        Value* list = Top();
        if (list == nullptr || !list->is_list())
          return Error("APPENDS to a non-list");
        for (Value& item : items)
          list->mutable_items().push_back(std::move(item));
        break;
      }
      case kEmptyDict:
        RETURN_IF_ERROR(NewMutable(Value::MakeDict()));
        break;
      case kDict: {
        std::vector<Value> kv;
        RETURN_IF_ERROR(PopMark(&kv));
        Value dict = Value::MakeDict();
        RETURN_IF_ERROR(SetItems(dict, kv));
        RETURN_IF_ERROR(NewMutable(std::move(dict)));
        break;
      }
      case kSetItem: {
        std::vector<Value> kv(2);
        RETURN_IF_ERROR(Pop(&kv[1]));
        RETURN_IF_ERROR(Pop(&kv[0]));
        Value* dict = Top();
        if (dict == nullptr) return Error("SETITEM without a dict");
        RETURN_IF_ERROR(SetItems(*dict, kv));
        break;
      }
      case kSetItems: {
        std::vector<Value> kv;
        RETURN_IF_ERROR(PopMark(&kv));
        Value* dict = Top();
        if (dict == nullptr) return Error("SETITEMS without a dict");
        RETURN_IF_ERROR(SetItems(*dict, kv));
        break;
      }
      case kBinPut:
      case kLongBinPut:
      case kMemoize: {
        uint64_t index;
        if (op_ == kBinPut) {
          uint8_t i;
          RETURN_IF_ERROR(TakeLE(&i));
          index = i;
        } else if (op_ == kLongBinPut) {
          uint32_t i;
          RETURN_IF_ERROR(TakeLE(&i));
          index = i;
        } else {
          index = memo_.size();
        }
        Value* top = Top();
        if (top == nullptr) return Error("PUT on an empty stack");
        RETURN_IF_ERROR(Charge(kMemoCost));
        memo_[index] = *top;
        break;
      }
      case kBinGet:
      case kLongBinGet: {
        uint64_t index;
        if (op_ == kBinGet) {
          uint8_t i;
          RETURN_IF_ERROR(TakeLE(&i));
          index = i;
        } else {
          uint32_t i;
          RETURN_IF_ERROR(TakeLE(&i));
          index = i;
        }
        auto it = memo_.find(index);
        if (it == memo_.end()) {
          return Error(absl::StrCat("memo key ", index, " not found"));
        }
        stack_.push_back(it->second);
        break;
      }
      case kGlobal: {
        std::string module, name;
        RETURN_IF_ERROR(TakeLine(&module));
        RETURN_IF_ERROR(TakeLine(&name));
        RETURN_IF_ERROR(PushGlobal(module, name));
        break;
      }
      case kStackGlobal: {
        Value name, module;
        RETURN_IF_ERROR(Pop(&name));
        RETURN_IF_ERROR(Pop(&module));
        if (!name.is_string() || !module.is_string()) {
          return Error("STACK_GLOBAL needs two strings");
        }
        RETURN_IF_ERROR(PushGlobal(module.as_string(), name.as_string()));
        break;
      }
      case kReduce:
      case kNewObj: {
        Value args, callable;
        RETURN_IF_ERROR(Pop(&args));
        RETURN_IF_ERROR(Pop(&callable));
        ASSIGN_OR_RETURN(Value result, Call(callable, args, 0));
        stack_.push_back(std::move(result));
        break;
      }
      case kBuild: {
        Value state;
        RETURN_IF_ERROR(Pop(&state));
        Value* target = Top();
        if (target == nullptr) return Error("BUILD on an empty stack");
        // OrderedDict state is the state dict's `_metadata` attribute (module
        // versions), and a tensor's is Python-side attributes: neither
        // matters to the values, so drop them.
        if (!target->is_dict() && !target->is_tensor()) {
          return Error(absl::StrCat("BUILD on a ", target->kind_name(),
                                    " is not supported"));
        }
        break;
      }
      case kBinPersId: {
        Value pid;
        RETURN_IF_ERROR(Pop(&pid));
        if (!options_.persistent_load) {
          return Error("persistent id without a persistent_load handler");
        }
        absl::StatusOr<Value> loaded = options_.persistent_load(pid);
        if (!loaded.ok()) {
          return absl::Status(
              loaded.status().code(),
              absl::StrFormat("%s (persistent id at offset %d)",
                              loaded.status().message(), FileOffset(op_pos_)));
        }
        stack_.push_back(*std::move(loaded));
        break;
      }
      default:
        return Error(absl::StrFormat("unsupported pickle opcode 0x%02x",
                                     static_cast<unsigned>(op_)));
    }
  }
}

// ------------------------------------------------------------------ Pickler

class Writer {
 public:
  // `root` is scanned once for the containers and tensors it holds more
  // than once; those are memoized when first written.
  Writer(const Value& root, const PickleOptions& options) : options_(options) {
    ForEachNode(root, [this](const Value& node, bool first) {
      if (!first) shared_.insert(node.identity());
    });
  }

  absl::Status Write(const Value& v, int depth);
  const std::string& out() const { return out_; }
  bool used_bytes() const { return used_bytes_; }

 private:
  void Op(unsigned char op) { out_.push_back(static_cast<char>(op)); }
  void LE(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Int(int64_t v) {
    if (v >= 0 && v < 256) {
      Op(kBinInt1);
      LE(v, 1);
    } else if (v >= 0 && v < 65536) {
      Op(kBinInt2);
      LE(v, 2);
    } else if (v >= std::numeric_limits<int32_t>::min() &&
               v <= std::numeric_limits<int32_t>::max()) {
      Op(kBinInt);
      LE(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      Op(kLong1);  // Two's complement, little-endian; 8 bytes always fit.
      LE(8, 1);
      LE(static_cast<uint64_t>(v), 8);
    }
  }
  void Str(absl::string_view s) {
    Op(kBinUnicode);
    LE(s.size(), 4);
    out_.append(s.data(), s.size());
  }
  absl::Status Global(absl::string_view qualified) {
    if (!IsAllowedGlobal(qualified)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot pickle global '", qualified, "'"));
    }
    const size_t dot = qualified.rfind('.');
    Op(kGlobal);
    absl::StrAppend(&out_, qualified.substr(0, dot), "\n",
                    qualified.substr(dot + 1), "\n");
    return absl::OkStatus();
  }
  void EmptyOrderedDict() {
    (void)Global("collections.OrderedDict");
    Op(kEmptyTuple);
    Op(kReduce);
  }
  absl::Status Items(const std::vector<Value>& items, int depth) {
    for (const Value& item : items) {
      RETURN_IF_ERROR(Write(item, depth + 1));
    }
    return absl::OkStatus();
  }
  // BINPUT/LONG_BINPUT and BINGET/LONG_BINGET, as Python writes them.
  void Memo(unsigned char short_op, unsigned char long_op, uint32_t index) {
    if (index < 256) {
      Op(short_op);
      LE(index, 1);
    } else {
      Op(long_op);
      LE(index, 4);
    }
  }
  absl::Status WriteBody(const Value& v, int depth);

  const PickleOptions& options_;
  std::string out_;
  bool used_bytes_ = false;
  std::unordered_set<const void*> shared_;          // Met more than once.
  std::unordered_map<const void*, uint32_t> memo_;  // Written and memoized.
  std::unordered_set<const void*> path_;            // Being written.
};

absl::Status Writer::Write(const Value& v, int depth) {
  // Python's own limit is ~1000 frames; past that give up.
  if (depth > 500) {
    return absl::InvalidArgumentError(
        "value tree is nested too deeply to pickle");
  }
  const void* id = v.identity();
  if (id == nullptr) return WriteBody(v, depth);
  if (auto it = memo_.find(id); it != memo_.end()) {
    Memo(kBinGet, kLongBinGet, it->second);
    return absl::OkStatus();
  }
  if (!path_.insert(id).second) {
    return absl::InvalidArgumentError(
        "value is cyclic (a container contains itself): cannot pickle it");
  }
  absl::Status status = WriteBody(v, depth);
  path_.erase(id);
  RETURN_IF_ERROR(status);
  if (shared_.count(id) != 0) {
    const uint32_t index = static_cast<uint32_t>(memo_.size());
    Memo(kBinPut, kLongBinPut, index);
    memo_.emplace(id, index);
  }
  return absl::OkStatus();
}

absl::Status Writer::WriteBody(const Value& v, int depth) {
  constexpr size_t kBatch = 1000;  // As Python batches APPENDS/SETITEMS.
  switch (v.kind()) {
    case Value::Kind::kNone:
      Op(kNone);
      return absl::OkStatus();
    case Value::Kind::kBool:
      Op(v.as_bool() ? kNewTrue : kNewFalse);
      return absl::OkStatus();
    case Value::Kind::kInt:
      Int(v.as_int());
      return absl::OkStatus();
    case Value::Kind::kDouble: {
      uint64_t bits;
      const double d = v.as_double();
      std::memcpy(&bits, &d, sizeof(bits));
      Op(kBinFloat);
      for (int i = 7; i >= 0; --i)
        out_.push_back(static_cast<char>(bits >> (8 * i)));
      return absl::OkStatus();
    }
    case Value::Kind::kString:
      Str(v.as_string());
      return absl::OkStatus();
    case Value::Kind::kBytes:
      used_bytes_ = true;
      Op(kBinBytes);
      LE(v.as_bytes().size(), 4);
      out_.append(v.as_bytes());
      return absl::OkStatus();
    case Value::Kind::kList: {
      Op(kEmptyList);
      const auto& items = v.items();
      for (size_t i = 0; i < items.size(); i += kBatch) {
        Op(kMark);
        for (size_t j = i; j < std::min(items.size(), i + kBatch); ++j) {
          RETURN_IF_ERROR(Write(items[j], depth + 1));
        }
        Op(kAppends);
      }
      return absl::OkStatus();
    }
    case Value::Kind::kTuple: {
      const auto& items = v.items();
      if (items.empty()) {
        Op(kEmptyTuple);
      } else if (items.size() <= 3) {
        RETURN_IF_ERROR(Items(items, depth));
        Op(kTuple1 + items.size() - 1);
      } else {
        Op(kMark);
        RETURN_IF_ERROR(Items(items, depth));
        Op(kTuple);
      }
      return absl::OkStatus();
    }
    case Value::Kind::kDict: {
      const Dict& dict = v.dict();
      if (dict.ordered()) {
        EmptyOrderedDict();
      } else {
        Op(kEmptyDict);
      }
      const auto& entries = dict.entries();
      for (size_t i = 0; i < entries.size(); i += kBatch) {
        Op(kMark);
        for (size_t j = i; j < std::min(entries.size(), i + kBatch); ++j) {
          RETURN_IF_ERROR(Write(entries[j].first, depth + 1));
          RETURN_IF_ERROR(Write(entries[j].second, depth + 1));
        }
        Op(kSetItems);
      }
      return absl::OkStatus();
    }
    case Value::Kind::kGlobal:
      return Global(v.global_name());
    case Value::Kind::kTensor: {
      if (!options_.describe_tensor) {
        return absl::InvalidArgumentError(
            "cannot pickle a tensor without a "
            "describe_tensor handler");
      }
      ASSIGN_OR_RETURN(PickledTensor t, options_.describe_tensor(v));
      RETURN_IF_ERROR(Global("torch._utils._rebuild_tensor_v2"));
      Op(kMark);
      RETURN_IF_ERROR(Write(t.persistent_id, depth + 1));
      Op(kBinPersId);
      Int(t.storage_offset);
      std::vector<Value> sizes, strides;
      for (int64_t s : t.sizes) sizes.push_back(Value::Int(s));
      for (int64_t s : t.strides) strides.push_back(Value::Int(s));
      RETURN_IF_ERROR(Write(Value::MakeTuple(std::move(sizes)), depth + 1));
      RETURN_IF_ERROR(Write(Value::MakeTuple(std::move(strides)), depth + 1));
      Op(t.requires_grad ? kNewTrue : kNewFalse);
      EmptyOrderedDict();  // backward_hooks
      Op(kTuple);
      Op(kReduce);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown value kind");
}

}  // namespace

uint64_t DefaultUnpickleBudget(uint64_t input_bytes) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  if (input_bytes > (kMax - kBudgetAllowance) / kBudgetPerInputByte) {
    return kMax;
  }
  return kBudgetPerInputByte * input_bytes + kBudgetAllowance;
}

bool IsAllowedGlobal(absl::string_view qualified_name) {
  for (const char* allowed : kAllowedGlobals) {
    if (qualified_name == allowed) return true;
  }
  return false;
}

absl::StatusOr<UnpickleResult> Unpickle(absl::string_view data,
                                        const UnpickleOptions& options) {
  Machine machine(data, options);
  return machine.Run();
}

absl::StatusOr<std::string> Pickle(const Value& root,
                                   const PickleOptions& options) {
  Writer writer(root, options);
  RETURN_IF_ERROR(writer.Write(root, 0));
  std::string out;
  out.push_back(static_cast<char>(kProto));
  // BINBYTES is a protocol-3 opcode; everything else is protocol 2.
  out.push_back(writer.used_bytes() ? 3 : 2);
  out.append(writer.out());
  out.push_back(static_cast<char>(kStop));
  return out;
}

}  // namespace dmue::io
