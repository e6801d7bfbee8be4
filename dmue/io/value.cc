#include "dmue/io/value.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
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

bool Dict::Set(Value key, Value value) {
  if (key.is_string()) {
    auto [it, inserted] =
        string_index_.emplace(key.as_string(), entries_.size());
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

const Value* Dict::Find(absl::string_view key) const {
  auto it = string_index_.find(std::string(key));
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
      for (auto& [key, value] : (*dict)->entries_) {
        out->push_back(std::move(key));
        out->push_back(std::move(value));
      }
      (*dict)->entries_.clear();
      (*dict)->string_index_.clear();
      (*dict)->int_index_.clear();
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
  out.data_ = std::move(v);
  return out;
}

Value Value::Bytes(std::string v) {
  Value out;
  out.kind_ = Kind::kBytes;
  out.data_ = std::move(v);
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
  out.data_ = std::move(qualified_name);
  return out;
}

const Value* Value::Get(absl::string_view key) const {
  if (!is_dict()) return nullptr;
  return dict().Find(key);
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

// Depth-limited so that a cyclic or absurdly deep tree cannot recurse forever.
void Render(const Value& v, int max_items, int depth, std::string* out) {
  if (depth > 16) {
    out->append("...");
    return;
  }
  switch (v.kind()) {
    case Value::Kind::kNone:
      out->append("None");
      return;
    case Value::Kind::kBool:
      out->append(v.as_bool() ? "True" : "False");
      return;
    case Value::Kind::kInt:
      absl::StrAppend(out, v.as_int());
      return;
    case Value::Kind::kDouble:
      absl::StrAppend(out, v.as_double());
      return;
    case Value::Kind::kString:
      absl::StrAppend(out, "'", v.as_string(), "'");
      return;
    case Value::Kind::kBytes:
      absl::StrAppend(out, "bytes(", v.as_bytes().size(), ")");
      return;
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      const bool list = v.is_list();
      out->append(list ? "[" : "(");
      int n = 0;
      for (const Value& item : v.items()) {
        if (n > 0) out->append(", ");
        if (n++ == max_items) {
          absl::StrAppend(out, "... (", v.items().size(), " items)");
          break;
        }
        Render(item, max_items, depth + 1, out);
      }
      out->append(list ? "]" : ")");
      return;
    }
    case Value::Kind::kDict: {
      out->append("{");
      int n = 0;
      for (const auto& [key, value] : v.dict()) {
        if (n > 0) out->append(", ");
        if (n++ == max_items) {
          absl::StrAppend(out, "... (", v.dict().size(), " items)");
          break;
        }
        Render(key, max_items, depth + 1, out);
        out->append(": ");
        Render(value, max_items, depth + 1, out);
      }
      out->append("}");
      return;
    }
    case Value::Kind::kTensor: {
      const TensorRef& t = v.tensor();
      absl::StrAppend(out, "tensor(",
                      t.storage ? DTypeName(t.storage->dtype) : "?", ", [",
                      absl::StrJoin(t.sizes, ", "), "])");
      return;
    }
    case Value::Kind::kGlobal:
      absl::StrAppend(out, "<", v.global_name(), ">");
      return;
  }
}

}  // namespace

std::string Value::DebugString(int max_items) const {
  std::string out;
  Render(*this, max_items, 0, &out);
  return out;
}

}  // namespace dmue::io
