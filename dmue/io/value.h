// A small, torch-free value tree for the contents of PyTorch checkpoints.
//
// The unpickler (pickle.h) produces these values, the torch layer
// (torch_checkpoint.h) attaches tensor data to them, and the writer serialises
// them back. Keeping the type free of LibTorch lets the zip and pickle layers
// (and their tests) compile in seconds.
#ifndef DMUE_IO_VALUE_H_
#define DMUE_IO_VALUE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace dmue::io {

// Element types of the storages a checkpoint may hold.
enum class DType {
  kFloat32,
  kFloat64,
  kFloat16,
  kBFloat16,
  kInt64,
  kInt32,
  kInt16,
  kInt8,
  kUInt8,
  kBool,
};

// Bytes per element.
int DTypeSize(DType dtype);
// "float32", "int64", ... (the names torch prints without the "torch." prefix).
const char* DTypeName(DType dtype);
// The pickled storage class name ("FloatStorage", ...).
const char* DTypeStorageName(DType dtype);
// Inverse of DTypeStorageName; false when `name` is not a supported storage.
bool DTypeFromStorageName(absl::string_view name, DType* dtype);

// Opaque tensor data owned by a layer above this one (the torch layer keeps an
// at::Tensor here). A base class rather than a template so that value trees
// stay one concrete type.
class StorageData {
 public:
  virtual ~StorageData() = default;
};

// One flat, typed storage: many tensors (views) may share it.
struct Storage {
  std::string key;  // name inside the checkpoint ("0", "139823...").
  DType dtype = DType::kFloat32;
  std::string location;  // "cpu", "cuda:0": informational, data is on CPU.
  int64_t numel = 0;     // elements in the storage.
  std::shared_ptr<const StorageData> data;  // null until the bytes are read.
};

// A strided view of a Storage, as torch._utils._rebuild_tensor_v2 describes it.
struct TensorRef {
  std::shared_ptr<Storage> storage;
  int64_t storage_offset = 0;  // in elements.
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // in elements.
  bool requires_grad = false;
};

class Value;

// Insertion-ordered dictionary with string or integer keys; Python's dict and
// collections.OrderedDict both map here (`ordered` records which one it was so
// a round trip keeps the type).
class Dict {
 public:
  using Entry = std::pair<Value, Value>;

  bool ordered() const { return ordered_; }
  void set_ordered(bool ordered) { ordered_ = ordered; }

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }

  // Inserts or replaces (keeping the first position, as Python does). Returns
  // false, changing nothing, when `key` is neither a string nor an integer.
  bool Set(Value key, Value value);
  // Null when absent.
  const Value* Find(absl::string_view key) const;
  const Value* Find(int64_t key) const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> string_index_;
  std::unordered_map<int64_t, size_t> int_index_;
  bool ordered_ = false;

  friend class Value;  // Takes entries apart in ~Value.
};

// None, bool, int, float, str, bytes, list, tuple, dict or tensor; or a
// global: a reference to one of the few Python classes/functions the
// unpickler allows (e.g. torch.FloatStorage inside a persistent id).
//
// Containers and tensors have reference semantics (copies share them), like
// Python objects: the unpickler relies on this, because its memo and its stack
// hold the same list while later opcodes append to it.
class Value {
 public:
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kDouble,
    kString,
    kBytes,
    kList,
    kTuple,
    kDict,
    kTensor,
    kGlobal,
  };
  using List = std::vector<Value>;

  Value() = default;  // None.
  // Destruction is iterative, so a hostile pickle that nests a million lists
  // cannot overflow the stack when its tree is freed.
  ~Value();
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value& other);
  Value& operator=(Value&& other) noexcept;
  static Value None() { return Value(); }
  static Value Bool(bool v);
  static Value Int(int64_t v);
  static Value Double(double v);
  static Value String(std::string v);
  static Value Bytes(std::string v);
  static Value MakeList(List items = {});
  static Value MakeTuple(List items = {});
  static Value MakeDict(bool ordered = false);
  static Value Tensor(std::shared_ptr<TensorRef> ref);
  // `qualified_name` is "module.name", e.g. "torch.FloatStorage".
  static Value Global(std::string qualified_name);

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_double() const { return kind_ == Kind::kDouble; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_bytes() const { return kind_ == Kind::kBytes; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_tensor() const { return kind_ == Kind::kTensor; }
  bool is_global() const { return kind_ == Kind::kGlobal; }

  // Accessors; calling one for another kind is a programming error (checked by
  // std::get, which throws std::bad_variant_access).
  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_double() const { return std::get<double>(data_); }
  // Strings, bytes and global names (bytes are raw, strings UTF-8).
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const std::string& as_bytes() const { return std::get<std::string>(data_); }
  const std::string& global_name() const {
    return std::get<std::string>(data_);
  }
  // Lists and tuples.
  const List& items() const { return *std::get<std::shared_ptr<List>>(data_); }
  List& mutable_items() { return *std::get<std::shared_ptr<List>>(data_); }
  const Dict& dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  Dict& mutable_dict() { return *std::get<std::shared_ptr<Dict>>(data_); }
  const TensorRef& tensor() const { return *tensor_ptr(); }
  const std::shared_ptr<TensorRef>& tensor_ptr() const {
    return std::get<std::shared_ptr<TensorRef>>(data_);
  }

  // Convenience for dicts: the value at `key`, or null.
  const Value* Get(absl::string_view key) const;

  // "None", "int", "dict", ... for error messages.
  static const char* KindName(Kind kind);
  const char* kind_name() const { return KindName(kind_); }

  // A short, single-line rendering for messages and tools (tensors render as
  // "tensor(float32, [2, 3])"); long containers are abbreviated.
  std::string DebugString(int max_items = 8) const;

 private:
  // Moves the children of a container this Value solely owns into `out`.
  static void DetachChildren(Value& v, std::vector<Value>* out);

  Kind kind_ = Kind::kNone;
  std::variant<std::monostate, bool, int64_t, double, std::string,
               std::shared_ptr<List>, std::shared_ptr<Dict>,
               std::shared_ptr<TensorRef>>
      data_;
};

}  // namespace dmue::io

#endif  // DMUE_IO_VALUE_H_
