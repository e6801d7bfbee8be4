// A small, torch-free value tree for the contents of PyTorch checkpoints.
//
// The unpickler (pickle.h) produces these values, the torch layer
// (torch_checkpoint.h) attaches tensor data to them, and the writer serialises
// them back. Keeping the type free of LibTorch lets the zip and pickle layers
// (and their tests) compile in seconds.
#ifndef DMUE_IO_VALUE_H_
#define DMUE_IO_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
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
  // Null until the bytes are read. Readers load only the prefix that the
  // tensors of the file reach, so it may hold fewer than `numel` elements.
  std::shared_ptr<const StorageData> data;
};

// A strided view of a Storage, as torch._utils._rebuild_tensor_v2 describes it.
struct TensorRef {
  std::shared_ptr<Storage> storage;
  int64_t storage_offset = 0;  // in elements.
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // in elements.
  bool requires_grad = false;
};

// Views with more dimensions than this are refused (real ones have at most a
// handful; LibTorch kernels assume few).
inline constexpr int kMaxTensorDims = 64;

// What a strided view needs from its storage.
struct ViewExtent {
  int64_t numel = 0;  // Elements of the view.
  // Elements the storage must hold: storage_offset + largest offset + 1, or
  // 0 for an empty view (LibTorch ignores an empty view's offset).
  int64_t extent = 0;
};

// Validates a view the way LibTorch would before it builds one, but as a
// Status instead of an exception: as many sizes as strides, at most
// kMaxTensorDims of them, no negative size, stride or offset, and an element
// count, byte count (numel * element_size) and extent that fit in int64.
// Messages describe the view; callers add the file or entry.
absl::StatusOr<ViewExtent> ComputeViewExtent(
    const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
    int64_t storage_offset, int element_size);

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
  // Removes every entry.
  void Clear();

 private:
  std::vector<Entry> entries_;
  // Views into the key strings held by `entries_` (shared, so they never
  // move): an index must not copy a key that a hostile file repeats.
  std::unordered_map<std::string_view, size_t> string_index_;
  std::unordered_map<int64_t, size_t> int_index_;
  bool ordered_ = false;

  friend class Value;  // Takes entries apart in ~Value.
};

// None, bool, int, float, str, bytes, list, tuple, dict or tensor; or a
// global: a reference to one of the few Python classes/functions the
// unpickler allows (e.g. torch.FloatStorage inside a persistent id).
//
// Containers, tensors and strings have reference semantics (copies share
// them), like Python objects: the unpickler relies on this, because its memo
// and its stack hold the same list while later opcodes append to it, and
// because a file that repeats one large string through the memo must not
// multiply its bytes. Shared containers make values graphs, not trees: walks
// must expect sharing and cycles (see ForEachNode).
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
  const std::string& as_string() const {
    return *std::get<SharedString>(data_);
  }
  const std::string& as_bytes() const { return *std::get<SharedString>(data_); }
  const std::string& global_name() const {
    return *std::get<SharedString>(data_);
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

  // The shared object behind a list, tuple, dict or tensor (equal for copies
  // of one value); null for other kinds.
  const void* identity() const;
  // Children in order: the items of a list or tuple, or key0, value0, key1,
  // ... of a dict; none for other kinds.
  size_t num_children() const;
  const Value& child(size_t i) const;

  // "None", "int", "dict", ... for error messages.
  static const char* KindName(Kind kind);
  const char* kind_name() const { return KindName(kind_); }

  // A short, single-line rendering for messages and tools (tensors render as
  // "tensor(float32, [2, 3])"); long containers and strings are abbreviated,
  // a container inside itself renders as Python does ("[...]"), and the
  // result never exceeds about kMaxDebugChars, however large or shared the
  // value is.
  std::string DebugString(int max_items = 8) const;
  static constexpr size_t kMaxDebugChars = 2048;

 private:
  using SharedString = std::shared_ptr<const std::string>;

  // Moves the children of a container this Value solely owns into `out`.
  static void DetachChildren(Value& v, std::vector<Value>* out);

  Kind kind_ = Kind::kNone;
  std::variant<std::monostate, bool, int64_t, double, SharedString,
               std::shared_ptr<List>, std::shared_ptr<Dict>,
               std::shared_ptr<TensorRef>>
      data_;
};

// Calls `visit(node, first)` for `root` and then for every child of every
// container it reaches, depth first, without recursion. A container or tensor
// met again (shared, or inside itself) is visited again with first == false
// but not expanded again, so a walk costs one step per edge of the graph
// however cyclic or shared it is; scalars always have first == true.
void ForEachNode(
    const Value& root,
    const std::function<void(const Value& node, bool first)>& visit);

// True when a container reachable from one of `roots` contains itself,
// directly or through others. Iterative, linear in the graph.
bool HasCycle(const std::vector<Value>& roots);

// inspect_checkpoint's listing: one line per leaf, "<path>  <description>".
struct OutlineOptions {
  int max_depth = 64;
  // Past either limit the listing stops with a line that says so.
  int64_t max_lines = 100000;
  int64_t max_bytes = int64_t{16} << 20;
};

struct OutlineStats {
  int64_t lines = 0;
  int64_t tensors = 0;   // Distinct tensors listed.
  int64_t elements = 0;  // Their elements (saturates at the int64 maximum).
  bool truncated = false;
};

// Lists `root` through `emit` (one call per line, without the newline).
// Paths join dict keys and item indices with "."; tensors print as
// "float32 [2, 3]", other leaves as "<kind> = <DebugString>". A container or
// tensor met a second time (shared, or cyclic) prints "-> same object as
// <first path>" instead of being listed again, so the output is linear in
// the distinct nodes and bounded by the options.
OutlineStats Outline(const Value& root, const OutlineOptions& options,
                     const std::function<void(const std::string&)>& emit);

}  // namespace dmue::io

#endif  // DMUE_IO_VALUE_H_
