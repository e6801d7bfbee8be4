#include "dmue/io/value.h"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace dmue::io {

namespace {

struct DTypeInfo {
  DType dtype;
  int size;
  const char* name;
  const char* storage;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat32, 4, "float32", "FloatStorage"},
    {DType::kFloat64, 8, "float64", "DoubleStorage"},
    {DType::kFloat16, 2, "float16", "HalfStorage"},
    {DType::kBFloat16, 2, "bfloat16", "BFloat16Storage"},
    {DType::kInt64, 8, "int64", "LongStorage"},
    {DType::kInt32, 4, "int32", "IntStorage"},
    {DType::kInt16, 2, "int16", "ShortStorage"},
    {DType::kInt8, 1, "int8", "CharStorage"},
    {DType::kUInt8, 1, "uint8", "ByteStorage"},
    {DType::kBool, 1, "bool", "BoolStorage"},
};

const DTypeInfo& Info(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[0];  // Unreachable: every enumerator is listed.
}

}  // namespace

int DTypeSize(DType dtype) { return Info(dtype).size; }
const char* DTypeName(DType dtype) { return Info(dtype).name; }
const char* DTypeStorageName(DType dtype) { return Info(dtype).storage; }

bool DTypeFromStorageName(absl::string_view name, DType* dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.storage) {
      *dtype = info.dtype;
      return true;
    }
  }
  return false;
}

absl::StatusOr<ViewExtent> ComputeViewExtent(
    const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
    int64_t storage_offset, int element_size) {
  auto describe = [&] {
    return absl::StrFormat("view of size [%s] stride [%s] offset %d",
                           absl::StrJoin(sizes, ","),
                           absl::StrJoin(strides, ","), storage_offset);
  };
  if (sizes.size() != strides.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe(), ": size and stride have different lengths"));
  }
  if (sizes.size() > static_cast<size_t>(kMaxTensorDims)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("view with %d dimensions (more than %d)", sizes.size(),
                        kMaxTensorDims));
  }
  if (storage_offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe(), ": negative storage offset"));
  }
  // Overflow-checked in int64, as LibTorch would need it: numel * element
  // size, and offset + sum((size - 1) * stride).
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t numel = 1;
  int64_t last = 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe(), ": negative size or stride"));
    }
    if (sizes[d] == 0) numel = 0;
  }
  for (size_t d = 0; d < sizes.size() && numel != 0; ++d) {
    if (sizes[d] > kMax / numel) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe(), ": element count overflows int64"));
    }
    numel *= sizes[d];
    const int64_t span = sizes[d] - 1;
    if (span > 0 && strides[d] > (kMax - last) / span) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe(), ": largest offset overflows int64"));
    }
    last += span * strides[d];
  }
  if (numel != 0 && numel > kMax / std::max(element_size, 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe(), ": byte count overflows int64"));
  }
  ViewExtent out;
  out.numel = numel;
  if (numel != 0) {
    if (last > kMax - 1 - storage_offset) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe(), ": extent overflows int64"));
    }
    out.extent = storage_offset + last + 1;
  }
  return out;
}

bool Dict::Set(Value key, Value value) {
  if (key.is_string()) {
    auto [it, inserted] = string_index_.emplace(
        std::string_view(key.as_string()), entries_.size());
    if (!inserted) {
      entries_[it->second].second = std::move(value);
      return true;
    }
  } else if (key.is_int() || key.is_bool()) {
    // Python treats True == 1, so they share a slot.
    int64_t k = key.is_int() ? key.as_int() : int64_t{key.as_bool()};
    auto [it, inserted] = int_index_.emplace(k, entries_.size());
    if (!inserted) {
      entries_[it->second].second = std::move(value);
      return true;
    }
  } else {
    return false;
  }
  entries_.emplace_back(std::move(key), std::move(value));
  return true;
}

void Dict::Clear() {
  string_index_.clear();
  int_index_.clear();
  entries_.clear();
}

const Value* Dict::Find(absl::string_view key) const {
  auto it = string_index_.find(std::string_view(key.data(), key.size()));
  return it == string_index_.end() ? nullptr : &entries_[it->second].second;
}

const Value* Dict::Find(int64_t key) const {
  auto it = int_index_.find(key);
  return it == int_index_.end() ? nullptr : &entries_[it->second].second;
}

void Value::DetachChildren(Value& v, std::vector<Value>* out) {
  if (auto* list = std::get_if<std::shared_ptr<List>>(&v.data_)) {
    if (*list != nullptr && list->use_count() == 1) {
      for (Value& item : **list) out->push_back(std::move(item));
      (*list)->clear();
    }
  } else if (auto* dict = std::get_if<std::shared_ptr<Dict>>(&v.data_)) {
    if (*dict != nullptr && dict->use_count() == 1) {
      (*dict)->string_index_.clear();  // Views into the keys moved below.
      (*dict)->int_index_.clear();
      for (auto& [key, value] : (*dict)->entries_) {
        out->push_back(std::move(key));
        out->push_back(std::move(value));
      }
      (*dict)->entries_.clear();
    }
  }
}

Value::~Value() {
  std::vector<Value> work;
  DetachChildren(*this, &work);
  while (!work.empty()) {
    Value v = std::move(work.back());
    work.pop_back();
    DetachChildren(v, &work);
    // `v` dies here without children, so its destructor does not recurse.
  }
}

Value& Value::operator=(const Value& other) {
  Value copy(other);
  return *this = std::move(copy);
}

Value& Value::operator=(Value&& other) noexcept {
  if (this != &other) {
    Value old(std::move(*this));  // Freed iteratively by ~Value.
    kind_ = other.kind_;
    data_ = std::move(other.data_);
  }
  return *this;
}

Value Value::Bool(bool v) {
  Value out;
  out.kind_ = Kind::kBool;
  out.data_ = v;
  return out;
}

Value Value::Int(int64_t v) {
  Value out;
  out.kind_ = Kind::kInt;
  out.data_ = v;
  return out;
}

Value Value::Double(double v) {
  Value out;
  out.kind_ = Kind::kDouble;
  out.data_ = v;
  return out;
}

Value Value::String(std::string v) {
  Value out;
  out.kind_ = Kind::kString;
  out.data_ = std::make_shared<const std::string>(std::move(v));
  return out;
}

Value Value::Bytes(std::string v) {
  Value out;
  out.kind_ = Kind::kBytes;
  out.data_ = std::make_shared<const std::string>(std::move(v));
  return out;
}

Value Value::MakeList(List items) {
  Value out;
  out.kind_ = Kind::kList;
  out.data_ = std::make_shared<List>(std::move(items));
  return out;
}

Value Value::MakeTuple(List items) {
  Value out;
  out.kind_ = Kind::kTuple;
  out.data_ = std::make_shared<List>(std::move(items));
  return out;
}

Value Value::MakeDict(bool ordered) {
  Value out;
  out.kind_ = Kind::kDict;
  auto dict = std::make_shared<Dict>();
  dict->set_ordered(ordered);
  out.data_ = std::move(dict);
  return out;
}

Value Value::Tensor(std::shared_ptr<TensorRef> ref) {
  Value out;
  out.kind_ = Kind::kTensor;
  out.data_ = std::move(ref);
  return out;
}

Value Value::Global(std::string qualified_name) {
  Value out;
  out.kind_ = Kind::kGlobal;
  out.data_ = std::make_shared<const std::string>(std::move(qualified_name));
  return out;
}

const Value* Value::Get(absl::string_view key) const {
  if (!is_dict()) return nullptr;
  return dict().Find(key);
}

const void* Value::identity() const {
  if (auto* list = std::get_if<std::shared_ptr<List>>(&data_)) {
    return list->get();
  }
  if (auto* dict = std::get_if<std::shared_ptr<Dict>>(&data_)) {
    return dict->get();
  }
  if (auto* tensor = std::get_if<std::shared_ptr<TensorRef>>(&data_)) {
    return tensor->get();
  }
  return nullptr;
}

size_t Value::num_children() const {
  if (is_list() || is_tuple()) return items().size();
  if (is_dict()) return 2 * dict().size();
  return 0;
}

const Value& Value::child(size_t i) const {
  if (is_dict()) {
    const Dict::Entry& entry = dict().entries()[i / 2];
    return i % 2 == 0 ? entry.first : entry.second;
  }
  return items()[i];
}

const char* Value::KindName(Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kDouble:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kTensor:
      return "tensor";
    case Kind::kGlobal:
      return "global";
  }
  return "?";
}

namespace {

constexpr size_t kMaxRenderedString = 64;
constexpr size_t kMaxRenderedDims = 16;
constexpr size_t kMaxRenderDepth = 16;

// `s`, cut to kMaxRenderedString bytes with a note of its length.
std::string Abbreviate(const std::string& s) {
  if (s.size() <= kMaxRenderedString) return s;
  return absl::StrCat(s.substr(0, kMaxRenderedString), "... (", s.size(),
                      " bytes)");
}

std::string ShapeString(const std::vector<int64_t>& sizes) {
  if (sizes.size() <= kMaxRenderedDims) return absl::StrJoin(sizes, ", ");
  std::vector<int64_t> head(sizes.begin(), sizes.begin() + kMaxRenderedDims);
  return absl::StrCat(absl::StrJoin(head, ", "), ", ... (", sizes.size(),
                      " dims)");
}

std::string TensorString(const TensorRef& t) {
  return absl::StrCat(t.storage ? DTypeName(t.storage->dtype) : "?", " [",
                      ShapeString(t.sizes), "]");
}

// DebugString's writer: depth-limited recursion, a budget on the output, and
// the chain of containers being rendered, so that a container inside itself
// prints as "[...]" instead of recursing.
class Renderer {
 public:
  Renderer(int max_items, std::string* out)
      : max_items_(static_cast<size_t>(std::max(max_items, 0))), out_(out) {}

  void Render(const Value& v) {
    if (Full()) {
      out_->append("...");
      return;
    }
    switch (v.kind()) {
      case Value::Kind::kNone:
        out_->append("None");
        return;
      case Value::Kind::kBool:
        out_->append(v.as_bool() ? "True" : "False");
        return;
      case Value::Kind::kInt:
        absl::StrAppend(out_, v.as_int());
        return;
      case Value::Kind::kDouble:
        absl::StrAppend(out_, v.as_double());
        return;
      case Value::Kind::kString:
        absl::StrAppend(out_, "'", Abbreviate(v.as_string()), "'");
        return;
      case Value::Kind::kBytes:
        absl::StrAppend(out_, "bytes(", v.as_bytes().size(), ")");
        return;
      case Value::Kind::kList:
      case Value::Kind::kTuple:
      case Value::Kind::kDict:
        Container(v);
        return;
      case Value::Kind::kTensor:
        absl::StrAppend(
            out_, "tensor(",
            v.tensor().storage ? DTypeName(v.tensor().storage->dtype) : "?",
            ", [", ShapeString(v.tensor().sizes), "])");
        return;
      case Value::Kind::kGlobal:
        absl::StrAppend(out_, "<", Abbreviate(v.global_name()), ">");
        return;
    }
  }

 private:
  bool Full() const { return out_->size() >= Value::kMaxDebugChars; }

  void Container(const Value& v) {
    const char* open = v.is_list() ? "[" : v.is_tuple() ? "(" : "{";
    const char* close = v.is_list() ? "]" : v.is_tuple() ? ")" : "}";
    if (std::find(path_.begin(), path_.end(), v.identity()) != path_.end()) {
      absl::StrAppend(out_, open, "...", close);  // As Python prints it.
      return;
    }
    if (path_.size() >= kMaxRenderDepth) {
      out_->append("...");
      return;
    }
    path_.push_back(v.identity());
    out_->append(open);
    const size_t n = v.is_dict() ? v.dict().size() : v.items().size();
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out_->append(", ");
      if (i == max_items_ || Full()) {
        absl::StrAppend(out_, "... (", n, " items)");
        break;
      }
      if (v.is_dict()) {
        Render(v.dict().entries()[i].first);
        out_->append(": ");
        Render(v.dict().entries()[i].second);
      } else {
        Render(v.items()[i]);
      }
    }
    out_->append(close);
    path_.pop_back();
  }

  const size_t max_items_;
  std::string* const out_;
  std::vector<const void*> path_;
};

}  // namespace

std::string Value::DebugString(int max_items) const {
  std::string out;
  Renderer(max_items, &out).Render(*this);
  return out;
}

void ForEachNode(
    const Value& root,
    const std::function<void(const Value& node, bool first)>& visit) {
  std::unordered_set<const void*> seen;
  std::vector<const Value*> todo = {&root};
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    const void* id = v->identity();
    const bool first = id == nullptr || seen.insert(id).second;
    visit(*v, first);
    if (!first) continue;
    for (size_t i = v->num_children(); i-- > 0;) todo.push_back(&v->child(i));
  }
}

bool HasCycle(const std::vector<Value>& roots) {
  enum State : uint8_t { kOnPath, kDone };
  std::unordered_map<const void*, State> state;
  struct Frame {
    const Value* v;
    size_t next;
  };
  std::vector<Frame> path;
  for (const Value& root : roots) {
    if (root.num_children() == 0 ||
        !state.emplace(root.identity(), kOnPath).second) {
      continue;
    }
    path.push_back({&root, 0});
    while (!path.empty()) {
      Frame& top = path.back();
      if (top.next == top.v->num_children()) {
        state[top.v->identity()] = kDone;
        path.pop_back();
        continue;
      }
      const Value& c = top.v->child(top.next++);
      // Leaves, tensors and empty containers cannot close a cycle.
      if (c.num_children() == 0) continue;
      auto [it, inserted] = state.emplace(c.identity(), kOnPath);
      if (!inserted) {
        if (it->second == kOnPath) return true;
        continue;
      }
      path.push_back({&c, 0});  // `top` is not used past this point.
    }
  }
  return false;
}

namespace {

// Outline's walker: depth first over explicit frames (one per container on
// the current path), remembering where each container and tensor was first
// listed.
class Outliner {
 public:
  Outliner(const OutlineOptions& options,
           const std::function<void(const std::string&)>& emit)
      : options_(options), emit_(emit) {}

  OutlineStats Run(const Value& root) {
    Enter(root, "", 0);
    while (!frames_.empty() && !stats_.truncated) {
      Frame& top = frames_.back();
      const Value& v = *top.v;
      const size_t n = v.is_dict() ? v.dict().size() : v.items().size();
      if (top.next == n) {
        frames_.pop_back();
        continue;
      }
      const size_t i = top.next++;
      std::string path;
      const Value* child;
      if (v.is_dict()) {
        const Value& key = v.dict().entries()[i].first;
        path = Child(top.path, key.is_string() ? Abbreviate(key.as_string())
                                               : key.DebugString());
        child = &v.dict().entries()[i].second;
      } else {
        path = Child(top.path, std::to_string(i));
        child = &v.items()[i];
      }
      Enter(*child, std::move(path), top.depth + 1);  // May move `top`.
    }
    return stats_;
  }

 private:
  struct Frame {
    const Value* v;
    std::string path;
    int depth;
    size_t next = 0;
  };

  // Paths remembered for "same object as" lines are capped in total, so a
  // graph of many deep containers cannot grow this table without bound.
  static constexpr size_t kMaxRememberedPath = 256;
  static constexpr size_t kMaxRememberedBytes = size_t{4} << 20;

  static std::string Child(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : absl::StrCat(parent, ".", key);
  }

  void Enter(const Value& v, std::string path, int depth) {
    const std::string label = path.empty() ? "<root>" : path;
    if (const void* id = v.identity(); id != nullptr) {
      auto [it, inserted] = first_path_.emplace(id, std::string());
      if (!inserted) {
        Line(label, absl::StrCat("-> same object as ",
                                 it->second.empty() ? "an entry listed above"
                                                    : it->second));
        return;
      }
      if (label.size() <= kMaxRememberedPath &&
          remembered_bytes_ + label.size() <= kMaxRememberedBytes) {
        it->second = label;
        remembered_bytes_ += label.size();
      }
    }
    if (depth > options_.max_depth) {
      Line(label, "... (nested too deeply)");
      return;
    }
    switch (v.kind()) {
      case Value::Kind::kDict:
      case Value::Kind::kList:
      case Value::Kind::kTuple:
        if (v.num_children() == 0) {
          Line(label, v.is_dict() ? "{}" : v.is_list() ? "[]" : "()");
        } else {
          frames_.push_back({&v, std::move(path), depth});
        }
        return;
      case Value::Kind::kTensor:
        Tensor(label, v.tensor());
        return;
      default:
        Line(label, absl::StrCat(v.kind_name(), " = ", v.DebugString()));
    }
  }

  void Tensor(const std::string& label, const TensorRef& t) {
    const int element_size = t.storage ? DTypeSize(t.storage->dtype) : 1;
    absl::StatusOr<ViewExtent> extent =
        ComputeViewExtent(t.sizes, t.strides, t.storage_offset, element_size);
    stats_.tensors += 1;
    if (!extent.ok()) {
      Line(label, absl::StrCat(TensorString(t),
                               " (invalid: ", extent.status().message(), ")"));
      return;
    }
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    stats_.elements = extent->numel > kMax - stats_.elements
                          ? kMax
                          : stats_.elements + extent->numel;
    Line(label, TensorString(t));
  }

  void Line(const std::string& label, const std::string& what) {
    if (stats_.truncated) return;
    std::string line = absl::StrCat(label, "  ", what);
    if (stats_.lines >= options_.max_lines ||
        bytes_ + static_cast<int64_t>(line.size()) > options_.max_bytes) {
      stats_.truncated = true;
      emit_(absl::StrFormat("... (listing truncated after %d lines)",
                            stats_.lines));
      return;
    }
    bytes_ += static_cast<int64_t>(line.size());
    stats_.lines += 1;
    emit_(line);
  }

  const OutlineOptions& options_;
  const std::function<void(const std::string&)>& emit_;
  std::vector<Frame> frames_;
  std::unordered_map<const void*, std::string> first_path_;
  size_t remembered_bytes_ = 0;
  int64_t bytes_ = 0;
  OutlineStats stats_;
};

}  // namespace

OutlineStats Outline(const Value& root, const OutlineOptions& options,
                     const std::function<void(const std::string&)>& emit) {
  return Outliner(options, emit).Run(root);
}

}  // namespace dmue::io
