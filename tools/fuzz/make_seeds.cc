// Regenerates the committed seed corpus (tools/fuzz/corpus) from the
// repository's own writers and OpenCV's encoders, so every seed is a real,
// valid input of its parser that the fuzzer mutates from:
//
//   bazel run //tools/fuzz:make_seeds -- "$PWD/tools/fuzz/corpus"
//
// Binary seeds are written as .hex text (the repository carries no binary
// files; seed_file.h reads them back), text seeds as they are. Each is kept
// small (a few KB at most) so the fuzzers' mutations stay cheap.
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "datasets/label_list.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/pickle.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/io/value.h"
#include "dmue/io/zip_archive.h"
#include "dmue/state_dict.h"
#include "serving/grpc/grpc_predict_v2.pb.h"
#include "tools/fuzz/tiny_model.h"

namespace dmue::fuzz {
namespace {

namespace fs = std::filesystem;
using ::dmue::io::Value;

class SeedWriter {
 public:
  explicit SeedWriter(fs::path root) : root_(std::move(root)) {}

  // <root>/<target>/<name>.hex: a '#' line with `description`, then the
  // bytes in hex, 32 per line.
  void Hex(const std::string& target, const std::string& name,
           const std::string& description, const std::string& bytes) {
    std::string text = absl::StrCat("# ", description, "\n");
    for (size_t i = 0; i < bytes.size(); i += 32) {
      absl::StrAppend(&text, absl::BytesToHexString(bytes.substr(i, 32)), "\n");
    }
    Write(target, name + ".hex", text, bytes.size());
  }

  // <root>/<target>/<name>.txt holding `text` itself.
  void Text(const std::string& target, const std::string& name,
            const std::string& text) {
    Write(target, name + ".txt", text, text.size());
  }

  bool ok() const { return ok_; }

 private:
  void Write(const std::string& target, const std::string& file,
             const std::string& contents, size_t seed_bytes) {
    const fs::path dir = root_ / target;
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::ofstream out(dir / file, std::ios::binary | std::ios::trunc);
    out << contents;
    if (!out.flush()) {
      std::fprintf(stderr, "cannot write %s\n", (dir / file).c_str());
      ok_ = false;
      return;
    }
    std::printf("%-12s %-32s %6zu bytes\n", target.c_str(), file.c_str(),
                seed_bytes);
  }

  fs::path root_;
  bool ok_ = true;
};

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs `write(path)` on a scratch file and returns what it wrote.
template <typename Fn>
absl::StatusOr<std::string> WrittenBytes(const fs::path& scratch, Fn&& write) {
  const std::string path = (scratch / "seed.bin").string();
  RETURN_IF_ERROR(write(path));
  return ReadWhole(path);
}

// ---------------------------------------------------------------------------
// Checkpoints and their containers.

io::StateDict TinyStateDict() {
  torch::manual_seed(0);
  torch::nn::Sequential model = MakeTinyModel();
  io::StateDict state;
  for (auto& [name, tensor] : ModuleStateDict(*model)) {
    state.emplace_back(name, tensor.detach().clone());
  }
  return state;
}

// A torch >= 1.6 checkpoint whose top level is a training snapshot: the
// reader must pick "state_dict" out of it and type-check the rest.
absl::StatusOr<Value> TrainingSnapshot(const io::StateDict& state) {
  ASSIGN_OR_RETURN(Value weights, io::StateDictToValue(state));
  Value optimizer = Value::MakeDict();
  optimizer.mutable_dict().Set(Value::String("step"), Value::Int(10));
  optimizer.mutable_dict().Set(
      Value::String("betas"),
      Value::MakeTuple({Value::Double(0.9), Value::Double(0.999)}));
  Value root = Value::MakeDict();
  root.mutable_dict().Set(Value::String("epoch"), Value::Int(3));
  root.mutable_dict().Set(Value::String("lr"), Value::Double(0.01));
  root.mutable_dict().Set(Value::String("state_dict"), std::move(weights));
  root.mutable_dict().Set(Value::String("optimizer"), std::move(optimizer));
  return root;
}

// Three tensors over one storage: whole, a slice at an offset, and a
// transposed (non-contiguous) view; the reader must keep them one storage.
absl::StatusOr<Value> SharedStorageViews() {
  const at::Tensor base = torch::arange(6, torch::kFloat32);
  Value root = Value::MakeDict();
  const std::pair<const char*, at::Tensor> views[] = {
      {"full", base},
      {"slice", base.narrow(0, 2, 3)},
      {"transposed", base.view({2, 3}).t()},
  };
  for (const auto& [name, view] : views) {
    ASSIGN_OR_RETURN(Value v, io::FromTensor(view));
    root.mutable_dict().Set(Value::String(name), std::move(v));
  }
  return root;
}

absl::StatusOr<std::string> PickleBytes(const Value& v) {
  return io::Pickle(v, {});
}

// The legacy (torch <= 1.5) stream torch.save wrote: magic number, protocol
// version, sys info, the object with storages as persistent ids, the storage
// keys, then each storage as an int64 element count and raw bytes.
absl::StatusOr<std::string> LegacyCheckpoint(const io::StateDict& state) {
  static constexpr unsigned char kMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c,
                                             0xfc, 0x9c, 0x46, 0xf9, 0x20,
                                             0x6a, 0xa8, 0x50, 0x19, 0x2e};
  std::string out(reinterpret_cast<const char*>(kMagic), sizeof(kMagic));
  Value sys_info = Value::MakeDict();
  Value sizes = Value::MakeDict();
  sizes.mutable_dict().Set(Value::String("short"), Value::Int(2));
  sizes.mutable_dict().Set(Value::String("int"), Value::Int(4));
  sizes.mutable_dict().Set(Value::String("long"), Value::Int(4));
  sys_info.mutable_dict().Set(Value::String("protocol_version"),
                              Value::Int(1001));
  sys_info.mutable_dict().Set(Value::String("little_endian"),
                              Value::Bool(true));
  sys_info.mutable_dict().Set(Value::String("type_sizes"), std::move(sizes));
  ASSIGN_OR_RETURN(Value root, io::StateDictToValue(state));

  std::vector<at::Tensor> storages;  // Index = storage key.
  std::map<const io::Storage*, int> keys;
  io::PickleOptions options;
  options.describe_tensor =
      [&](const Value& tensor) -> absl::StatusOr<io::PickledTensor> {
    const io::TensorRef& ref = tensor.tensor();
    auto [it, added] = keys.emplace(ref.storage.get(), int(keys.size()));
    if (added) {
      ASSIGN_OR_RETURN(at::Tensor t, io::ToTensor(tensor));
      storages.push_back(t.contiguous());
    }
    io::PickledTensor out;
    out.persistent_id = Value::MakeTuple(
        {Value::String("storage"),
         Value::Global(std::string("torch.") +
                       io::DTypeStorageName(ref.storage->dtype)),
         Value::String(std::to_string(it->second)), Value::String("cpu"),
         Value::Int(storages[it->second].numel()), Value::None()});
    out.storage_offset = 0;
    out.sizes = ref.sizes;
    out.strides = ref.strides;
    return out;
  };
  absl::StatusOr<std::string> version = PickleBytes(Value::Int(1001));
  absl::StatusOr<std::string> info = PickleBytes(sys_info);
  absl::StatusOr<std::string> object = io::Pickle(root, options);
  if (!version.ok() || !info.ok() || !object.ok()) {
    return absl::InternalError("cannot pickle the legacy parts");
  }
  Value key_list = Value::MakeList();
  for (size_t i = 0; i < storages.size(); ++i) {
    key_list.mutable_items().push_back(Value::String(std::to_string(i)));
  }
  ASSIGN_OR_RETURN(std::string key_bytes, PickleBytes(key_list));
  absl::StrAppend(&out, *version, *info, *object, key_bytes);
  for (const at::Tensor& t : storages) {
    const int64_t numel = t.numel();
    out.append(reinterpret_cast<const char*>(&numel), sizeof(numel));
    out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  return out;
}

std::string Le16(uint16_t v) { return std::string{char(v), char(v >> 8)}; }
std::string Le32(uint32_t v) {
  return Le16(uint16_t(v)) + Le16(uint16_t(v >> 16));
}

std::string RawDeflate(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A zip with a deflated and a stored entry, laid out by hand because
// ZipWriter only stores: the reader's inflate path needs a seed too.
std::string DeflatedZip() {
  struct Item {
    std::string name, data;
    bool deflate;
  };
  const Item items[] = {
      {"archive/notes.txt",
       std::string(40, 'a') + "fuzz seed, deflated " + std::string(40, 'b'),
       true},
      {"archive/version", "3\n", false},
  };
  std::string body, directory;
  for (const Item& item : items) {
    const std::string data = item.deflate ? RawDeflate(item.data) : item.data;
    const uint32_t crc =
        crc32(0, reinterpret_cast<const Bytef*>(item.data.data()),
              static_cast<uInt>(item.data.size()));
    const std::string common = Le16(20) + Le16(0) + Le16(item.deflate ? 8 : 0) +
                               Le16(0) + Le16(0x21) + Le32(crc) +
                               Le32(uint32_t(data.size())) +
                               Le32(uint32_t(item.data.size())) +
                               Le16(uint16_t(item.name.size())) + Le16(0);
    const uint32_t offset = uint32_t(body.size());
    body += Le32(0x04034b50) + common + item.name + data;
    directory += Le32(0x02014b50) + Le16(20) + common + Le16(0) + Le16(0) +
                 Le16(0) + Le32(0) + Le32(offset) + item.name;
  }
  const uint16_t n = sizeof(items) / sizeof(items[0]);
  return body + directory + Le32(0x06054b50) + Le16(0) + Le16(0) + Le16(n) +
         Le16(n) + Le32(uint32_t(directory.size())) +
         Le32(uint32_t(body.size())) + Le16(0);
}

absl::Status StoredZip(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<io::ZipWriter> zip, io::ZipWriter::Create(path));
  RETURN_IF_ERROR(zip->AddEntry("archive/data.pkl", "\x80\x02K\x07."));
  RETURN_IF_ERROR(zip->AddEntry("archive/data/0", std::string(16, '\x01')));
  return zip->Finish();
}

// data.pkl of a checkpoint file, as torch writes it.
absl::StatusOr<std::string> DataPickle(const fs::path& scratch,
                                       const std::string& checkpoint) {
  const std::string path = (scratch / "ckpt.zip").string();
  std::ofstream(path, std::ios::binary) << checkpoint;
  ASSIGN_OR_RETURN(std::unique_ptr<io::ZipReader> zip, io::ZipReader::Open(path));
  const io::ZipEntry* entry = zip->Find("archive/data.pkl");
  if (entry == nullptr) return absl::NotFoundError("no archive/data.pkl");
  return zip->ReadToString(*entry, 1 << 20);
}

absl::Status ContainerSeeds(SeedWriter& out, const fs::path& scratch) {
  const io::StateDict state = TinyStateDict();
  absl::StatusOr<std::string> state_zip = WrittenBytes(
      scratch,
      [&](const std::string& p) { return io::WriteStateDict(p, state); });
  absl::StatusOr<Value> snapshot = TrainingSnapshot(state);
  absl::StatusOr<Value> views = SharedStorageViews();
  if (!state_zip.ok() || !snapshot.ok() || !views.ok()) {
    return absl::InternalError("cannot build the checkpoint seeds");
  }
  absl::StatusOr<std::string> snapshot_zip = WrittenBytes(
      scratch,
      [&](const std::string& p) { return io::WriteCheckpoint(p, *snapshot); });
  absl::StatusOr<std::string> views_zip = WrittenBytes(
      scratch,
      [&](const std::string& p) { return io::WriteCheckpoint(p, *views); });
  absl::StatusOr<std::string> legacy = LegacyCheckpoint(state);
  absl::StatusOr<std::string> stored = WrittenBytes(scratch, StoredZip);
  absl::StatusOr<std::string> data_pkl = DataPickle(scratch, *state_zip);
  for (const absl::Status& s :
       {snapshot_zip.status(), views_zip.status(), legacy.status(),
        stored.status(), data_pkl.status()}) {
    RETURN_IF_ERROR(s);
  }
  out.Hex("checkpoint", "state_dict_zip",
          "WriteStateDict of tools/fuzz/tiny_model.h (torch >= 1.6 zip format)",
          *state_zip);
  out.Hex("checkpoint", "training_snapshot_zip",
          "WriteCheckpoint of {epoch, lr, state_dict, optimizer}",
          *snapshot_zip);
  out.Hex("checkpoint", "shared_storage_views_zip",
          "WriteCheckpoint of three views (whole, slice, transposed) of one "
          "storage",
          *views_zip);
  out.Hex("checkpoint", "legacy_state_dict",
          "the tiny state dict in the legacy torch <= 1.5 stream format",
          *legacy);
  out.Hex("zip", "state_dict_zip", "WriteStateDict of the tiny model",
          *state_zip);
  out.Hex("zip", "stored_two_entries",
          "ZipWriter: two stored, 64-byte aligned entries", *stored);
  out.Hex("zip", "deflated_and_stored",
          "hand-laid zip: one deflated, one stored entry", DeflatedZip());
  out.Hex("zip", "empty_archive", "end-of-central-directory record only",
          Le32(0x06054b50) + std::string(18, '\0'));
  out.Hex("pickle", "state_dict_data_pkl",
          "archive/data.pkl of the tiny state dict (OrderedDict, "
          "rebuild_tensor_v2, "
          "persistent ids)",
          *data_pkl);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Pickles.

absl::Status PickleSeeds(SeedWriter& out) {
  Value shared = Value::MakeList({Value::Int(1), Value::String("shared")});
  Value root = Value::MakeDict(/*ordered=*/true);
  auto set = [&root](const char* key, Value v) {
    root.mutable_dict().Set(Value::String(key), std::move(v));
  };
  set("ints",
      Value::MakeList({Value::Int(0), Value::Int(-1), Value::Int(300),
                       Value::Int(int64_t{1} << 40), Value::Int(INT64_MIN)}));
  set("float", Value::Double(-2.5e-300));
  set("bytes", Value::Bytes(std::string("\x00\xff\x80", 3)));
  set("tuple", Value::MakeTuple({Value::None(), Value::Bool(true)}));
  set("a", shared);
  set("b", shared);  // Written once, then fetched from the memo.
  ASSIGN_OR_RETURN(std::string bytes, io::Pickle(root, {}));
  out.Hex(
      "pickle", "pickler_memo_sharing",
      "Pickle() of an OrderedDict with ints, float, bytes, tuple and a list "
      "shared through the memo",
      bytes);
  // Python's own pickler, for opcodes ours never writes (FRAME, MEMOIZE,
  // SHORT_BINUNICODE, LONG1 of 8 bytes, ...).
  const std::pair<const char*, const char*> python[] = {
      {"python_protocol4",
       "80049524000000000000007d94288c0161945d94284b014740040000000000008c0178"
       "94658c0162944e888694752e"},
      {"python_protocol3_mixed",
       "80037d7100285804000000696e747371015d7102284b004affffffff4bff4dffff4a00"
       "0000808a060000000000018a0800000000000000806558010000006671034701a56e1f"
       "c2f8f35958010000007371045802000000c3a971055801000000627106430200ff7107"
       "58010000006e71084e5801000000747109888986710a58010000006c710b5d710c285d"
       "710d7d710e655806000000736861726564710f5d71104b01615805000000616761696e"
       "71116810752e"},
      {"python_ordereddict_protocol2",
       "800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271012858"
       "01000000777102473ff800000000000058010000006e71034b07752e"},
  };
  const char* sources[] = {
      "pickle.dumps({'a': [1, 2.5, 'x'], 'b': (None, True)}, protocol=4)",
      "pickle.dumps({'ints': [0, -1, 255, 65535, -2**31, 2**40, -2**63], "
      "'f': 1e-300, 's': 'e-acute', 'b': b'\\x00\\xff', 'n': None, "
      "'t': (True, False), 'l': [[], {}], 'shared': x, 'again': x}, "
      "protocol=3), x = [1]",
      "pickle.dumps(OrderedDict([('w', 1.5), ('n', 7)]), protocol=2)",
  };
  for (size_t i = 0; i < 3; ++i) {
    out.Hex("pickle", python[i].first, sources[i],
            absl::HexStringToBytes(python[i].second));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Images.

cv::Mat Pattern(int rows, int cols, int type) {
  cv::Mat m(rows, cols, type);
  const int channels = m.channels();
  const bool wide = m.depth() == CV_16U;
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      for (int c = 0; c < channels; ++c) {
        const int v =
            ((x * 16 + y * 8 + c * 60) ^ ((x / 4 + y / 4) % 2 ? 0x80 : 0)) &
            0xff;
        const int i = (y * cols + x) * channels + c;
        if (wide) {
          m.ptr<uint16_t>()[i] = static_cast<uint16_t>(v * 257);
        } else {
          m.data[i] = static_cast<uint8_t>(v);
        }
      }
    }
  }
  return m;
}

absl::StatusOr<std::string> Encode(const cv::Mat& image, const char* ext,
                                   const std::vector<int>& params = {}) {
  std::vector<uchar> buffer;
  try {
    if (!cv::imencode(ext, image, buffer, params)) {
      return absl::UnavailableError(absl::StrCat("OpenCV cannot encode ", ext));
    }
  } catch (const cv::Exception& e) {
    return absl::UnavailableError(e.what());
  }
  return std::string(buffer.begin(), buffer.end());
}

// An APP1 Exif segment with orientation 6 (rotate 90) inserted after SOI.
std::string WithExifOrientation(const std::string& jpeg) {
  const std::string tiff = std::string("II*\0", 4) + Le32(8) + Le16(1) +
                           Le16(0x0112) + Le16(3) + Le32(1) + Le16(6) +
                           Le16(0) + Le32(0);
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const uint16_t length = uint16_t(payload.size() + 2);
  const std::string app1 = std::string("\xff\xe1", 2) +
                           std::string{char(length >> 8), char(length)} +
                           payload;
  return jpeg.substr(0, 2) + app1 + jpeg.substr(2);
}

absl::Status ImageSeeds(SeedWriter& out) {
  struct Spec {
    const char* name;
    const char* description;
    cv::Mat image;
    const char* ext;
    std::vector<int> params;
  };
  const Spec specs[] = {
      {"png_gray_8x8",
       "8-bit grayscale PNG",
       Pattern(8, 8, CV_8UC1),
       ".png",
       {}},
      {"png_rgb_12x10", "8-bit RGB PNG", Pattern(10, 12, CV_8UC3), ".png", {}},
      {"png_rgba_8x8",
       "RGBA PNG (alpha dropped)",
       Pattern(8, 8, CV_8UC4),
       ".png",
       {}},
      {"png_16bit_6x6", "16-bit RGB PNG", Pattern(6, 6, CV_16UC3), ".png", {}},
      {"jpeg_baseline_16x16",
       "baseline JPEG, quality 70",
       Pattern(16, 16, CV_8UC3),
       ".jpg",
       {cv::IMWRITE_JPEG_QUALITY, 70}},
      {"jpeg_progressive_16x16",
       "progressive JPEG (multi-scan), quality 70",
       Pattern(16, 16, CV_8UC3),
       ".jpg",
       {cv::IMWRITE_JPEG_QUALITY, 70, cv::IMWRITE_JPEG_PROGRESSIVE, 1}},
      {"jpeg_gray_16x16",
       "grayscale baseline JPEG",
       Pattern(16, 16, CV_8UC1),
       ".jpg",
       {cv::IMWRITE_JPEG_QUALITY, 70}},
      {"bmp_rgb_4x4", "24-bit BMP", Pattern(4, 4, CV_8UC3), ".bmp", {}},
      {"webp_lossy_16x16",
       "lossy WebP",
       Pattern(16, 16, CV_8UC3),
       ".webp",
       {cv::IMWRITE_WEBP_QUALITY, 50}},
  };
  for (const Spec& spec : specs) {
    ASSIGN_OR_RETURN(std::string bytes, Encode(spec.image, spec.ext, spec.params));
    out.Hex("image", spec.name, spec.description, bytes);
    if (std::string(spec.name) == "jpeg_baseline_16x16") {
      out.Hex("image", "jpeg_exif_orientation6",
              "baseline JPEG with an Exif APP1 segment, orientation 6",
              WithExifOrientation(bytes));
    }
  }
  // OpenCV 4.6 has no GIF encoder: the classic 1x1 GIF89a, for the header path.
  out.Hex("image", "gif_1x1",
          "1x1 GIF89a (header peek; OpenCV 4.6 cannot decode GIF)",
          absl::HexStringToBytes("47494638396101000100800000ffffff00000021f904"
                                 "01000000002c00000000010001000002024401003b"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Text formats.

void LabelListSeeds(SeedWriter& out) {
  out.Text("label_list", "reference",
           "# AffectNet-style list: <split>_<path> <label>\n"
           "train_0001.jpg 3\ntrain_dir/0002.jpg 0\n\ntest_0003.png 7\n");
  std::vector<datasets::LabelEntry> soft(2);
  soft[0] = {"a/0001.jpg", "train", 1, {0.1f, 0.6f, 0.3f}};
  soft[1] = {"b/0002.jpg", "test", 0, {1.0f, 0.0f, 0.0f}};
  out.Text("label_list", "reference_soft",
           datasets::FormatLabelList(soft, /*with_distribution=*/true));
  out.Text("label_list", "rafdb",
           "train_00001.jpg 5\ntrain_00002.jpg 1\ntest_0001.jpg 7\n");
  out.Text("label_list", "ferplus_label_csv",
           "fer0000000.png,\"(0, 0, 48, 48)\",4,0,0,1,3,2,0,0,0,0\r\n"
           "fer0000001.png,\"(0, 0, 48, 48)\",5,5,0,0,0,0,0,0,0,0\r\n"
           "fer0000002.png,\"(0, 0, 48, 48)\",0,0,0,0,0,0,0,0,1,9\r\n"
           "fer0000003.png,\"(0, 0, 48, 48)\",1,6,1,0,0,0,0,2,0,0\r\n");
  out.Text("label_list", "ferplus_fer2013new_csv",
           "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,"
           "fear,contempt,unknown,NF\n"
           "Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0\n"
           "Training,,0,0,0,0,0,0,0,0,0,10\n"
           "PublicTest,fer0028709.png,10,0,0,0,0,0,0,0,0,0\n");
}

std::string Fer2013Pixels() {
  std::vector<std::string> values;
  for (int i = 0; i < 48 * 48; ++i) {
    values.push_back(i % 97 == 0 ? "255" : i % 53 == 0 ? "7" : "0");
  }
  return absl::StrJoin(values, " ");
}

void Fer2013Seeds(SeedWriter& out) {
  // A valid row needs 2304 values, so this one seed is ~4.7 KB.
  out.Text("fer2013_csv", "header_and_one_row",
           absl::StrCat("emotion,pixels,Usage\n3,", Fer2013Pixels(),
                        ",Training\r\n"));
  out.Text("fer2013_csv", "short_pixel_rows",
           "emotion,pixels,Usage\n0,1 2 3,PublicTest\n4,255 0,PrivateTest\n");
  out.Text("fer2013_csv", "bad_fields",
           "6,0 0,Validation\n7,0,Training\n1,,Training,extra\n");
}

// ---------------------------------------------------------------------------
// Serving requests (the fuzz target's model: 3 classes, 4x4 input).

std::string Le32Float(float v) {
  std::string bytes(sizeof(v), '\0');
  std::memcpy(bytes.data(), &v, sizeof(v));
  return bytes;
}

inference::ModelInferRequest TensorRequest(bool raw) {
  inference::ModelInferRequest request;
  request.set_model_name("dmue");
  request.set_model_version("1");
  request.set_id("t");
  auto* input = request.add_inputs();
  input->set_name("input");
  input->set_datatype("FP32");
  for (int64_t d : {1, 3, 4, 4}) input->add_shape(d);
  std::string bytes;
  for (int i = 0; i < 48; ++i) {
    const float v = (i % 5) * 0.25f - 0.5f;
    if (raw) {
      bytes += Le32Float(v);
    } else {
      input->mutable_contents()->add_fp32_contents(v);
    }
  }
  if (raw) request.add_raw_input_contents(bytes);
  request.add_outputs()->set_name("probabilities");
  return request;
}

inference::ModelInferRequest ImageRequest(bool raw) {
  inference::ModelInferRequest request;
  request.set_model_name("dmue");
  auto* input = request.add_inputs();
  input->set_name("image");
  input->set_datatype("BYTES");
  input->add_shape(1);
  (*input->mutable_parameters())["skip_detection"].set_bool_param(true);
  const std::string photo = "\xff\xd8\xff\xe0 not a whole jpeg";
  if (raw) {
    request.add_raw_input_contents(Le32(static_cast<uint32_t>(photo.size())) + photo);
  } else {
    input->mutable_contents()->add_bytes_contents(photo);
  }
  return request;
}

void ServingRequestSeeds(SeedWriter& out) {
  std::vector<std::string> zeros(48, "0.5");
  out.Text("serving_request", "oip_tensor_flat",
           absl::StrCat(R"({"id":"a","inputs":[{"name":"input","datatype":"FP32","shape":[1,3,4,4],"data":[)",
                        absl::StrJoin(zeros, ","), "]}]}"));
  std::vector<std::string> rows;
  for (int r = 0; r < 12; ++r) rows.push_back("[0,1.5,-2,3e-3]");
  out.Text("serving_request", "oip_tensor_nested_with_outputs",
           absl::StrCat(R"({"outputs":[{"name":"probabilities"}],"inputs":[{"name":"input","datatype":"FP32",)",
                        R"("shape":[1,3,4,4],"data":[)", absl::StrJoin(rows, ","), "]}]}"));
  out.Text("serving_request", "oip_image",
           R"({"id":"r1","inputs":[{"name":"image","datatype":"BYTES","shape":[1],)"
           R"("parameters":{"skip_detection":true},"data":["/9j/4AAQSkZJRgABAQ=="]}],)"
           R"("outputs":[{"name":"labels"},{"name":"boxes"}]})");
  std::string bytes;
  TensorRequest(false).SerializeToString(&bytes);
  out.Hex("serving_request", "kserve_tensor_fp32_contents", "ModelInferRequest: FP32 [1,3,4,4] in fp32_contents",
          bytes);
  TensorRequest(true).SerializeToString(&bytes);
  out.Hex("serving_request", "kserve_tensor_raw", "ModelInferRequest: FP32 [1,3,4,4] in raw_input_contents", bytes);
  ImageRequest(false).SerializeToString(&bytes);
  out.Hex("serving_request", "kserve_image_bytes_contents",
          "ModelInferRequest: BYTES image in bytes_contents, skip_detection", bytes);
  ImageRequest(true).SerializeToString(&bytes);
  out.Hex("serving_request", "kserve_image_raw", "ModelInferRequest: BYTES image, length-prefixed raw contents",
          bytes);
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  SeedWriter out{fs::path(argv[1])};
  const fs::path scratch =
      fs::temp_directory_path() / absl::StrCat("dmue_make_seeds_", ::getpid());
  fs::create_directories(scratch);
  absl::Status status = ContainerSeeds(out, scratch);
  if (status.ok()) status = PickleSeeds(out);
  if (status.ok()) status = ImageSeeds(out);
  LabelListSeeds(out);
  Fer2013Seeds(out);
  ServingRequestSeeds(out);
  std::error_code ec;
  fs::remove_all(scratch, ec);
  if (!status.ok()) {
    std::fprintf(stderr, "make_seeds: %s\n", status.ToString().c_str());
    return 1;
  }
  return out.ok() ? 0 : 1;
}

}  // namespace
}  // namespace dmue::fuzz

int main(int argc, char** argv) { return dmue::fuzz::Main(argc, argv); }
