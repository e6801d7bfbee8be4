#include "dmue/io/torch_checkpoint.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dmue/base/files.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/pickle.h"
#include "dmue/io/zip_archive.h"

namespace dmue::io {

namespace {

// The storage bytes, as a flat 1-D CPU tensor of the storage's dtype.
class AtStorage : public StorageData {
 public:
  explicit AtStorage(at::Tensor flat) : flat_(std::move(flat)) {}
  const at::Tensor& flat() const { return flat_; }

 private:
  at::Tensor flat_;
};

at::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return at::kFloat;
    case DType::kFloat64:
      return at::kDouble;
    case DType::kFloat16:
      return at::kHalf;
    case DType::kBFloat16:
      return at::kBFloat16;
    case DType::kInt64:
      return at::kLong;
    case DType::kInt32:
      return at::kInt;
    case DType::kInt16:
      return at::kShort;
    case DType::kInt8:
      return at::kChar;
    case DType::kUInt8:
      return at::kByte;
    case DType::kBool:
      return at::kBool;
  }
  return at::kFloat;
}

bool FromScalarType(at::ScalarType type, DType* dtype) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16,
                  DType::kBFloat16, DType::kInt64, DType::kInt32, DType::kInt16,
                  DType::kInt8, DType::kUInt8, DType::kBool}) {
    if (ToScalarType(d) == type) {
      *dtype = d;
      return true;
    }
  }
  return false;
}

// Runs `fn`, which hands LibTorch data from a file, and turns whatever
// LibTorch throws into a Status naming `what`: a hostile file must never end
// the process through an uncaught c10::Error.
template <typename Fn>
absl::Status CatchTorch(absl::string_view what, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    if (absl::StrContains(message, "can't allocate memory")) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": out of memory: ", message));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": LibTorch refused it: ", message));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

// A flat CPU tensor of `numel` elements to read a storage into.
absl::StatusOr<at::Tensor> NewFlat(DType dtype, int64_t numel,
                                   absl::string_view what) {
  at::Tensor flat;
  if (auto s = CatchTorch(what,
                          [&] {
                            flat = at::empty({numel}, at::TensorOptions().dtype(
                                                          ToScalarType(dtype)));
                          });
      !s.ok()) {
    return s;
  }
  return flat;
}

// For every storage that the tensors of `root` use, the elements they reach
// (the largest extent of their views): readers load only that prefix, so a
// tiny tensor over a huge storage costs a tiny allocation. Storages that no
// tensor reaches are absent (they need nothing).
std::unordered_map<const Storage*, int64_t> NeededElements(const Value& root) {
  std::unordered_map<const Storage*, int64_t> need;
  ForEachNode(root, [&need](const Value& v, bool first) {
    if (!first || !v.is_tensor() || v.tensor().storage == nullptr) return;
    const TensorRef& t = v.tensor();
    absl::StatusOr<ViewExtent> extent = ComputeViewExtent(
        t.sizes, t.strides, t.storage_offset, DTypeSize(t.storage->dtype));
    if (!extent.ok()) return;  // ToTensor refuses the view itself.
    int64_t& n = need[t.storage.get()];
    n = std::max(n, std::min(extent->extent, t.storage->numel));
  });
  return need;
}

int64_t Needed(const std::unordered_map<const Storage*, int64_t>& need,
               const Storage* storage) {
  auto it = need.find(storage);
  return it == need.end() ? 0 : it->second;
}

absl::Status ErrnoError(absl::string_view action, const std::string& path) {
  const int err = errno;
  std::string message = absl::StrCat(action, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM)
    return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

// Positional reads with truncation errors that give the offset; used for the
// legacy format, which is a plain byte stream.
class File {
 public:
  static absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("cannot open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a readable regular file"));
    }
    return std::unique_ptr<File>(
        new File(path, fd, static_cast<uint64_t>(st.st_size)));
  }
  ~File() { ::close(fd_); }

  uint64_t size() const { return size_; }

  absl::Status ReadAt(uint64_t offset, void* dst, uint64_t n,
                      absl::string_view what) const {
    if (offset > size_ || n > size_ - offset) {
      return absl::DataLossError(absl::StrFormat(
          "%s: truncated: %s at offset %d needs %d bytes but the file has "
          "%d",
          path_, what, offset, n, size_));
    }
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, out, std::min<uint64_t>(n, 1u << 30),
                                  static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ErrnoError("cannot read", path_);
      if (got == 0) {
        return absl::DataLossError(absl::StrFormat(
            "%s: truncated: unexpected end of file at offset %d", path_,
            offset));
      }
      out += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<uint64_t>(got);
    }
    return absl::OkStatus();
  }

 private:
  File(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

// Tracks the storages that persistent ids name, so that every view of one
// key shares one Storage.
class StorageTable {
 public:
  explicit StorageTable(std::string path) : path_(std::move(path)) {}

  // ('storage', <class>, key, location, numel[, view_metadata]).
  absl::StatusOr<Value> Load(const Value& pid, bool legacy) {
    if (!pid.is_tuple() || pid.items().size() < 5 ||
        !pid.items()[0].is_string() ||
        pid.items()[0].as_string() != "storage") {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": unsupported persistent id ", pid.DebugString()));
    }
    const auto& f = pid.items();
    DType dtype;
    if (!f[1].is_global() || !absl::StartsWith(f[1].global_name(), "torch.") ||
        !DTypeFromStorageName(f[1].global_name().substr(6), &dtype)) {
      return absl::UnimplementedError(absl::StrCat(
          path_, ": unsupported storage type ", f[1].DebugString()));
    }
    if (!f[2].is_string() || !f[3].is_string() || !f[4].is_int() ||
        f[4].as_int() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": malformed storage persistent id ", pid.DebugString()));
    }
    const std::string& key = f[2].as_string();
    const int64_t numel = f[4].as_int();
    std::shared_ptr<Storage>& storage = storages_[key];
    if (storage == nullptr) {
      storage = std::make_shared<Storage>();
      storage->key = key;
      storage->dtype = dtype;
      storage->location = f[3].as_string();
      storage->numel = numel;
      order_.push_back(key);
    } else if (storage->dtype != dtype || storage->numel != numel) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": storage '", key, "' is described inconsistently"));
    }
    auto ref = std::make_shared<TensorRef>();
    ref->storage = storage;
    ref->sizes = {numel};
    ref->strides = {1};
    if (legacy && f.size() >= 6 && !f[5].is_none()) {
      // view_metadata = (view_key, offset, view_size): a slice of the root.
      const Value& view = f[5];
      if (!view.is_tuple() || view.items().size() != 3 ||
          !view.items()[1].is_int() || !view.items()[2].is_int()) {
        return absl::InvalidArgumentError(absl::StrCat(
            path_, ": malformed storage view ", view.DebugString()));
      }
      const int64_t offset = view.items()[1].as_int();
      const int64_t size = view.items()[2].as_int();
      if (offset < 0 || size < 0 || offset > numel || size > numel - offset) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ": storage view outside storage '", key, "'"));
      }
      ref->storage_offset = offset;
      ref->sizes = {size};
    }
    return Value::Tensor(std::move(ref));
  }

  const std::vector<std::string>& order() const { return order_; }
  Storage* Find(const std::string& key) {
    auto it = storages_.find(key);
    return it == storages_.end() ? nullptr : it->second.get();
  }

 private:
  std::string path_;
  std::map<std::string, std::shared_ptr<Storage>> storages_;
  std::vector<std::string> order_;
};

// Overflow-checked byte count of a storage.
absl::StatusOr<uint64_t> StorageBytes(const Storage& s,
                                      const std::string& path) {
  const uint64_t elem = static_cast<uint64_t>(DTypeSize(s.dtype));
  const uint64_t numel = static_cast<uint64_t>(s.numel);
  if (numel > (uint64_t{1} << 62) / elem) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": storage '", s.key, "' claims an impossible size"));
  }
  return numel * elem;
}

absl::StatusOr<Value> ReadZip(const std::string& path,
                              const ReadOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ZipReader> zip, ZipReader::Open(path));
  const ZipReader& reader = *zip;
  // The top folder is whatever name the file had when it was saved.
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : reader.entries()) {
    if (e.name == "data.pkl" || (absl::EndsWith(e.name, "/data.pkl") &&
                                 e.name.find('/') == e.name.size() - 9)) {
      pkl = &e;
      break;
    }
  }
  if (pkl == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": zip archive without <name>/data.pkl: not a torch.save file"));
  }
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);
  ASSIGN_OR_RETURN(std::string bytes,
                   reader.ReadToString(*pkl, options.max_pickle_bytes));

  StorageTable table(path);
  UnpickleOptions unpickle;
  unpickle.filename = absl::StrCat(path, ":", pkl->name);
  // data.pkl may be deflated: tie its budget to the bytes on disk.
  unpickle.max_memory_bytes = DefaultUnpickleBudget(reader.file_size());
  unpickle.persistent_load = [&table](const Value& pid) {
    return table.Load(pid, /*legacy=*/false);
  };
  ASSIGN_OR_RETURN(UnpickleResult result, Unpickle(bytes, unpickle));

  const auto reach = NeededElements(result.value);
  for (const std::string& key : table.order()) {
    Storage* storage = table.Find(key);
    const std::string name = absl::StrCat(prefix, "data/", key);
    const ZipEntry* entry = reader.Find(name);
    if (entry == nullptr) {
      return absl::DataLossError(
          absl::StrCat(path, ": storage entry '", name, "' is missing"));
    }
    ASSIGN_OR_RETURN(uint64_t need, StorageBytes(*storage, path));
    const uint64_t elem = static_cast<uint64_t>(DTypeSize(storage->dtype));
    // An entry may hold more than the declared numel (never less).
    if (entry->uncompressed_size < need ||
        entry->uncompressed_size % elem != 0) {
      return absl::DataLossError(absl::StrFormat(
          "%s: entry '%s' holds %d bytes but storage '%s' needs %d", path, name,
          entry->uncompressed_size, key, need));
    }
    const int64_t numel = Needed(reach, storage);
    ASSIGN_OR_RETURN(at::Tensor flat,
                     NewFlat(storage->dtype, numel,
                             absl::StrCat(path, ": entry '", name, "'")));
    RETURN_IF_ERROR(reader.ReadInto(*entry, flat.data_ptr(),
                                    static_cast<uint64_t>(numel) * elem));
    storage->data = std::make_shared<AtStorage>(std::move(flat));
  }
  return std::move(result.value);
}

// The first pickle of a legacy file: PROTO 2, LONG1 of 10 bytes holding the
// magic number 0x1950a86a20f9469cfc6c, STOP. torch.save always wrote exactly
// these bytes, and they hold an integer too wide for our VM.
constexpr unsigned char kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c,
                                          0xfc, 0x9c, 0x46, 0xf9, 0x20,
                                          0x6a, 0xa8, 0x50, 0x19, 0x2e};

absl::StatusOr<Value> ReadLegacy(const std::string& path, File& file,
                                 const ReadOptions& options) {
  uint64_t pos = sizeof(kLegacyMagic);
  // Pickles are parsed from a window of the file that grows on demand, so a
  // multi-gigabyte checkpoint is never held twice in memory.
  std::string window;
  uint64_t window_start = 0;
  StorageTable table(path);
  auto next_pickle = [&](bool with_storages) -> absl::StatusOr<Value> {
    uint64_t want = std::min<uint64_t>(file.size() - pos, 1 << 20);
    while (true) {
      if (window_start != pos || window.size() < want) {
        window.resize(want);
        window_start = pos;
        RETURN_IF_ERROR(file.ReadAt(pos, window.data(), want, "pickle"));
      }
      UnpickleOptions unpickle;
      unpickle.filename = path;
      unpickle.base_offset = pos;
      if (with_storages) {
        unpickle.persistent_load = [&table](const Value& pid) {
          return table.Load(pid, /*legacy=*/true);
        };
      }
      absl::StatusOr<UnpickleResult> result = Unpickle(window, unpickle);
      const uint64_t left = file.size() - pos;
      if (!result.ok() && absl::IsOutOfRange(result.status()) &&
          window.size() < left && window.size() < options.max_pickle_bytes) {
        want = std::min<uint64_t>(
            {left, window.size() * 4, options.max_pickle_bytes});
        continue;
      }
      RETURN_IF_ERROR(result);
      pos += result->consumed;
      window.erase(0, result->consumed);
      window_start = pos;
      return std::move(result->value);
    }
  };

  ASSIGN_OR_RETURN(Value protocol, next_pickle(false));
  if (!protocol.is_int() || protocol.as_int() != 1001) {
    return absl::UnimplementedError(
        absl::StrCat(path, ": unsupported legacy protocol version ",
                     protocol.DebugString()));
  }
  ASSIGN_OR_RETURN(Value sys_info, next_pickle(false));
  if (const Value* little = sys_info.Get("little_endian");
      little != nullptr && little->is_bool() && !little->as_bool()) {
    return absl::UnimplementedError(
        absl::StrCat(path, ": big-endian checkpoints are not supported"));
  }
  ASSIGN_OR_RETURN(Value root, next_pickle(true));
  ASSIGN_OR_RETURN(Value keys, next_pickle(false));
  const auto reach = NeededElements(root);
  if (!keys.is_list()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": storage key list is a ", keys.kind_name()));
  }
  for (const Value& key : keys.items()) {
    if (!key.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": storage key is a ", key.kind_name()));
    }
    Storage* storage = table.Find(key.as_string());
    if (storage == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": data for unknown storage '", key.as_string(), "'"));
    }
    int64_t count;
    RETURN_IF_ERROR(file.ReadAt(
        pos, &count, 8, absl::StrCat("size of storage '", storage->key, "'")));
    pos += 8;
    if (count != storage->numel) {
      return absl::DataLossError(absl::StrFormat(
          "%s: storage '%s' at offset %d has %d elements, expected %d", path,
          storage->key, pos - 8, count, storage->numel));
    }
    ASSIGN_OR_RETURN(uint64_t bytes, StorageBytes(*storage, path));
    if (bytes > file.size() - pos) {
      return absl::DataLossError(absl::StrFormat(
          "%s: truncated: storage '%s' at offset %d needs %d bytes but the "
          "file has %d",
          path, storage->key, pos, bytes, file.size()));
    }
    // Only the prefix that tensors reach is kept; the rest is skipped.
    const int64_t numel = Needed(reach, storage);
    const std::string what = absl::StrCat("storage '", storage->key, "'");
    ASSIGN_OR_RETURN(at::Tensor flat, NewFlat(storage->dtype, numel,
                                              absl::StrCat(path, ": ", what)));
    RETURN_IF_ERROR(file.ReadAt(
        pos, flat.data_ptr(),
        static_cast<uint64_t>(numel) * DTypeSize(storage->dtype), what));
    pos += bytes;
    storage->data = std::make_shared<AtStorage>(std::move(flat));
  }
  for (const std::string& key : table.order()) {
    if (table.Find(key)->data == nullptr) {
      return absl::DataLossError(
          absl::StrCat(path, ": no data for storage '", key, "'"));
    }
  }
  return root;
}

std::string StripModule(const std::string& key, bool strip) {
  constexpr absl::string_view kPrefix = "module.";
  if (strip && absl::StartsWith(key, kPrefix))
    return key.substr(kPrefix.size());
  return key;
}

}  // namespace

absl::StatusOr<Value> ReadCheckpoint(const std::string& path,
                                     const ReadOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, File::Open(path));
  unsigned char head[sizeof(kLegacyMagic)] = {};
  const uint64_t n = std::min<uint64_t>(file->size(), sizeof(head));
  if (n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty file, not a checkpoint"));
  }
  RETURN_IF_ERROR(file->ReadAt(0, head, n, "header"));
  if (n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) {
    file.reset();
    return ReadZip(path, options);
  }
  if (n == sizeof(kLegacyMagic) &&
      std::memcmp(head, kLegacyMagic, sizeof(kLegacyMagic)) == 0) {
    return ReadLegacy(path, *file, options);
  }
  if (n >= 2 && head[0] == 0x80 && head[1] == 0x02) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": a pickle without torch's legacy magic number: not a "
                     "torch.save checkpoint (or truncated)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path,
                   ": not a PyTorch checkpoint (neither a zip archive nor the "
                   "legacy torch.save format)"));
}

absl::StatusOr<at::Tensor> ToTensor(const Value& value) {
  if (!value.is_tensor()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a tensor, found a ", value.kind_name()));
  }
  const TensorRef& ref = value.tensor();
  const auto* data =
      ref.storage ? dynamic_cast<const AtStorage*>(ref.storage->data.get())
                  : nullptr;
  if (data == nullptr) {
    return absl::FailedPreconditionError(
        "tensor value without loaded storage data");
  }
  // Checked here, not only by the unpickler: a value tree can be built or
  // edited by code, and LibTorch must only ever see a view that fits.
  const at::Tensor& flat = data->flat();
  const std::string what = absl::StrCat("storage '", ref.storage->key, "'");
  absl::StatusOr<ViewExtent> extent =
      ComputeViewExtent(ref.sizes, ref.strides, ref.storage_offset,
                        static_cast<int>(flat.element_size()));
  if (!extent.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", extent.status().message()));
  }
  if (extent->extent > flat.numel()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: view of size [%s] stride [%s] offset %d reaches %d elements but "
        "%d are loaded",
        what, absl::StrJoin(ref.sizes, ","), absl::StrJoin(ref.strides, ","),
        ref.storage_offset, extent->extent, flat.numel()));
  }
  at::Tensor out;
  if (auto s = CatchTorch(what,
                          [&] {
                            out = flat.as_strided(ref.sizes, ref.strides,
                                                  ref.storage_offset);
                          });
      !s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<Value> FromTensor(const at::Tensor& tensor) {
  if (!tensor.defined()) {
    return absl::InvalidArgumentError("cannot store an undefined tensor");
  }
  constexpr absl::string_view kWhat = "cannot store a tensor";
  at::Tensor t = tensor;
  if (auto s = CatchTorch(kWhat,
                          [&] {
                            if (t.layout() != at::kStrided) t = t.to_dense();
                            if (!t.device().is_cpu()) t = t.cpu();
                            if (t.is_neg() || t.is_conj()) {
                              t = t.resolve_neg().resolve_conj();
                            }
                          });
      !s.ok()) {
    return s;
  }
  DType dtype;
  if (!FromScalarType(t.scalar_type(), &dtype)) {
    return absl::UnimplementedError(absl::StrCat(
        "cannot store a tensor of type ", c10::toString(t.scalar_type())));
  }
  const int64_t elem = DTypeSize(dtype);
  const int64_t numel = static_cast<int64_t>(t.storage().nbytes()) / elem;
  at::Tensor flat;
  if (auto s = CatchTorch(kWhat,
                          [&] {
                            flat = at::empty({0}, t.options())
                                       .set_(t.storage(), /*storage_offset=*/0,
                                             {numel}, {1});
                          });
      !s.ok()) {
    return s;
  }
  auto storage = std::make_shared<Storage>();
  storage->dtype = dtype;
  storage->location = "cpu";
  storage->numel = numel;
  storage->data = std::make_shared<AtStorage>(std::move(flat));
  auto ref = std::make_shared<TensorRef>();
  ref->storage = std::move(storage);
  ref->storage_offset = t.storage_offset();
  ref->sizes = t.sizes().vec();
  ref->strides = t.strides().vec();
  ref->requires_grad = t.requires_grad();
  return Value::Tensor(std::move(ref));
}

absl::StatusOr<StateDict> ToStateDict(const Value& root,
                                      const StateDictOptions& options,
                                      const std::string& path) {
  if (!root.is_dict()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": expected a state dict (a dict of tensors), found a ",
        root.kind_name()));
  }
  const Value* dict = &root;
  auto all_tensors = [](const Value& d) {
    for (const auto& [key, value] : d.dict()) {
      if (!value.is_tensor()) return false;
    }
    return true;
  };
  if (!all_tensors(root)) {
    dict = nullptr;
    for (const char* name : {"state_dict", "model"}) {
      const Value* inner = root.Get(name);
      if (inner != nullptr && inner->is_dict()) {
        dict = inner;
        break;
      }
    }
    if (dict == nullptr) {
      std::vector<std::string> keys;
      for (const auto& [key, value] : root.dict()) {
        keys.push_back(key.DebugString());
        if (keys.size() == 8) break;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          path,
          ": not a state dict: the top-level dict holds non-tensors "
          "and no 'state_dict' or 'model' dict (keys: ",
          absl::StrJoin(keys, ", "), ")"));
    }
  }
  StateDict out;
  std::set<std::string> seen;
  for (const auto& [key, value] : dict->dict()) {
    if (!key.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": state dict key ", key.DebugString(), " is not a string"));
    }
    if (!value.is_tensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": state dict entry '", key.as_string(), "' is a ",
                       value.kind_name(), ", not a tensor"));
    }
    std::string name =
        StripModule(key.as_string(), options.strip_module_prefix);
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": duplicate key '", name, "' after stripping 'module.'"));
    }
    absl::StatusOr<at::Tensor> tensor = ToTensor(value);
    if (!tensor.ok()) {
      return absl::Status(
          tensor.status().code(),
          absl::StrCat(path, ": '", name, "': ", tensor.status().message()));
    }
    out.emplace_back(std::move(name), *std::move(tensor));
  }
  return out;
}

absl::StatusOr<StateDict> ReadStateDict(const std::string& path,
                                        const StateDictOptions& options,
                                        const ReadOptions& read_options) {
  ASSIGN_OR_RETURN(Value root, ReadCheckpoint(path, read_options));
  return ToStateDict(root, options, path);
}

absl::StatusOr<Value> StateDictToValue(const StateDict& state_dict) {
  Value dict = Value::MakeDict(/*ordered=*/true);
  for (const auto& [name, tensor] : state_dict) {
    absl::StatusOr<Value> value = FromTensor(tensor);
    if (!value.ok()) {
      return absl::Status(
          value.status().code(),
          absl::StrCat("'", name, "': ", value.status().message()));
    }
    dict.mutable_dict().Set(Value::String(name), *std::move(value));
  }
  return dict;
}

absl::Status WriteCheckpoint(const std::string& path, const Value& root) {
  // Storages are keyed by their memory, so views of one tensor are written
  // once; a storage seen again with another dtype gets its own copy.
  struct Pending {
    std::string key;
    at::Tensor flat;
  };
  std::vector<Pending> pending;
  std::map<const void*, size_t> by_storage;
  std::map<const void*, int> first_dtype;

  PickleOptions options;
  options.describe_tensor =
      [&](const Value& value) -> absl::StatusOr<PickledTensor> {
    ASSIGN_OR_RETURN(at::Tensor view, ToTensor(value));
    const TensorRef& ref = value.tensor();
    const auto& data = static_cast<const AtStorage&>(*ref.storage->data);
    at::Tensor flat = data.flat();
    PickledTensor out;
    out.storage_offset = ref.storage_offset;
    out.sizes = ref.sizes;
    out.strides = ref.strides;
    out.requires_grad = ref.requires_grad;
    const DType dtype = ref.storage->dtype;
    const void* memory = flat.storage().unsafeGetStorageImpl();
    auto first = first_dtype.emplace(memory, static_cast<int>(dtype)).first;
    size_t index;
    if (first->second != static_cast<int>(dtype)) {
      // Reinterpreting one storage as two dtypes has no representation in
      // the format's typed storages: write this view as a copy of its own.
      at::Tensor copy, flat_copy;
      if (auto s = CatchTorch("cannot copy a tensor for writing",
                              [&] {
                                copy = view.contiguous().clone();
                                flat_copy = copy.reshape({-1});
                              });
          !s.ok()) {
        return s;
      }
      out.storage_offset = 0;
      out.strides = copy.strides().vec();
      index = pending.size();
      pending.push_back({std::to_string(index), flat_copy});
    } else {
      auto [it, inserted] = by_storage.emplace(memory, pending.size());
      if (inserted) {
        pending.push_back({std::to_string(pending.size()), flat});
      }
      index = it->second;
    }
    const Pending& p = pending[index];
    out.persistent_id = Value::MakeTuple(
        {Value::String("storage"),
         Value::Global(absl::StrCat("torch.", DTypeStorageName(dtype))),
         Value::String(p.key), Value::String("cpu"),
         Value::Int(p.flat.numel())});
    return out;
  };
  absl::StatusOr<std::string> pickle = Pickle(root, options);
  if (!pickle.ok()) {
    return absl::Status(
        pickle.status().code(),
        absl::StrCat("cannot write ", path, ": ", pickle.status().message()));
  }

  const std::string tmp = UniqueTempPath(path);
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::unique_ptr<ZipWriter> zip, ZipWriter::Create(tmp));
    ZipWriter& writer = *zip;
    RETURN_IF_ERROR(writer.AddEntry("archive/data.pkl", *pickle));
    RETURN_IF_ERROR(writer.AddEntry("archive/byteorder", "little"));
    for (const Pending& p : pending) {
      RETURN_IF_ERROR(writer.AddEntry(
          absl::StrCat("archive/data/", p.key), p.flat.data_ptr(),
          static_cast<uint64_t>(p.flat.numel()) * p.flat.element_size()));
    }
    RETURN_IF_ERROR(writer.AddEntry("archive/version", "3\n"));
    RETURN_IF_ERROR(writer.Finish());
    return CommitTempFile(tmp, path);
  }();
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

absl::Status WriteStateDict(const std::string& path,
                            const StateDict& state_dict) {
  absl::StatusOr<Value> value = StateDictToValue(state_dict);
  if (!value.ok()) {
    return absl::Status(
        value.status().code(),
        absl::StrCat("cannot write ", path, ": ", value.status().message()));
  }
  return WriteCheckpoint(path, *value);
}

}  // namespace dmue::io
