#include "training/descriptor_distill.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "datasets/label_list.h"
#include "datasets/seed.h"
#include "dmue/base/files.h"
#include "dmue/base/hash.h"
#include "dmue/base/status_macros.h"
#include "dmue/face_descriptor_net.h"
#include "dmue/model_config.h"
#include "dmue/util/progress.h"
#include "glog/logging.h"

namespace dmue::training {
namespace {

constexpr char kCacheMagic[] = "dmue-teacher-cache-v1";
constexpr int kViews = 2;  // as is, mirrored
constexpr uint64_t kFlipStream = 0x666c6970ULL;  // "flip": the student's mirror draws

class FaceApiTeacher : public DescriptorTeacher {
 public:
  FaceApiTeacher(FaceDescriptorNet net, std::string model_dir) : net_(std::move(net)), dir_(std::move(model_dir)) {}
  int input_side() const override { return FaceDescriptorNet::kInputSide; }
  int descriptor_size() const override { return FaceDescriptorNet::kDescriptorSize; }
  std::string fingerprint() const override { return absl::StrCat("face-api FaceRecognitionNet ", dir_); }
  absl::StatusOr<at::Tensor> Describe(const at::Tensor& images) const override { return net_.Descriptor(images); }

 private:
  FaceDescriptorNet net_;
  std::string dir_;
};

// What the cached descriptors depend on besides the image list.
uint64_t InputFingerprint(const DescriptorTeacher& teacher, bool grayscale) {
  const std::string key = absl::StrCat(teacher.fingerprint(), "|side ", teacher.input_side(), "|grey ",
                                       grayscale ? 1 : 0, "|views ", kViews);
  return Fnv1a64(key.data(), key.size());
}

struct CacheHeader {
  int64_t images = 0;
  int64_t dims = 0;
  uint64_t list_hash = 0;
  uint64_t input_hash = 0;
  int64_t done = 0;  // images [0, done) are filled
};

std::string FormatHeader(const CacheHeader& h) {
  return absl::StrFormat("%s images=%d dims=%d list=%016x teacher=%016x done=%d\n", kCacheMagic, h.images, h.dims,
                         h.list_hash, h.input_hash, h.done);
}

absl::StatusOr<CacheHeader> ParseHeader(absl::string_view line, const std::string& path) {
  const auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(path, ": not a teacher cache (", why, "); delete it to rebuild"));
  };
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
  if (fields.size() != 6 || fields[0] != kCacheMagic) return bad("bad header");
  CacheHeader h;
  const std::pair<absl::string_view, int64_t*> ints[] = {{"images", &h.images}, {"dims", &h.dims}, {"done", &h.done}};
  const std::pair<absl::string_view, uint64_t*> hashes[] = {{"list", &h.list_hash}, {"teacher", &h.input_hash}};
  for (size_t i = 1; i < fields.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
    bool parsed = false;
    for (const auto& [name, out] : ints) {
      if (kv.first == name) parsed = absl::SimpleAtoi(kv.second, out);
    }
    for (const auto& [name, out] : hashes) {
      if (kv.first == name) parsed = absl::SimpleHexAtoi(kv.second, out);
    }
    if (!parsed) return bad(absl::StrCat("field '", fields[i], "'"));
  }
  if (h.images < 0 || h.dims <= 0 || h.done < 0 || h.done > h.images) return bad("inconsistent counts");
  return h;
}

absl::Status SaveCache(const std::string& path, const CacheHeader& header, const at::Tensor& descriptors) {
  std::string bytes = FormatHeader(header);
  const auto* data = static_cast<const char*>(descriptors.data_ptr());
  bytes.append(data, descriptors.numel() * sizeof(float));
  return WriteFileAtomically(path, bytes);
}

// The cache at `path` into `descriptors` if it is one of `expected`'s;
// returns how many images it holds (0 when there is no file).
absl::StatusOr<int64_t> LoadCache(const std::string& path, const CacheHeader& expected, at::Tensor& descriptors) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return 0;  // no cache yet
  const int64_t payload = descriptors.numel() * int64_t(sizeof(float));
  // Up to this run's size, or the file's (within 4 GiB) so that a cache of a
  // longer list is refused by its header, not by its size.
  constexpr int64_t kMaxCacheBytes = int64_t{1} << 32;
  ASSIGN_OR_RETURN(std::string bytes,
                   ReadFileBytes(path, std::max<int64_t>(payload + 4096, std::min<int64_t>(size, kMaxCacheBytes))));
  const size_t eol = bytes.find('\n');
  if (eol == std::string::npos) return absl::DataLossError(absl::StrCat(path, ": not a teacher cache (no header)"));
  ASSIGN_OR_RETURN(CacheHeader found, ParseHeader(absl::string_view(bytes).substr(0, eol), path));
  const auto refuse = [&](absl::string_view what, auto cached, auto now) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": the teacher cache was made for ", what, " ", cached, ", this run has ", now,
        "; it cannot be reused (delete it to recompute, or use another output_dir)"));
  };
  if (found.images != expected.images) return refuse("an image count of", found.images, expected.images);
  if (found.list_hash != expected.list_hash) {
    return refuse("an image list with hash", absl::StrFormat("%016x", found.list_hash),
                  absl::StrFormat("%016x", expected.list_hash));
  }
  if (found.dims != expected.dims) return refuse("descriptors of size", found.dims, expected.dims);
  if (found.input_hash != expected.input_hash) {
    return refuse("a teacher/input fingerprint", absl::StrFormat("%016x", found.input_hash),
                  absl::StrFormat("%016x", expected.input_hash));
  }
  if (int64_t(bytes.size() - eol - 1) != payload) {
    return absl::DataLossError(absl::StrCat(path, ": teacher cache has ", bytes.size() - eol - 1,
                                            " bytes of descriptors, its header says ", payload));
  }
  std::memcpy(descriptors.data_ptr(), bytes.data() + eol + 1, payload);
  return found.done;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DescriptorTeacher>> LoadFaceApiTeacher(const std::string& model_dir) {
  const std::string dir = model_dir.empty() ? DefaultFaceApiModelDir() : model_dir;
  ASSIGN_OR_RETURN(FaceDescriptorNet net, FaceDescriptorNet::Load(dir));
  return std::make_unique<FaceApiTeacher>(std::move(net), dir);
}

datasets::TransformOptions TeacherTransform(int side, bool grayscale) {
  datasets::TransformOptions t = datasets::EvalTransform(side, side);
  t.mean = 0;
  t.std = 1.0f / 255;
  t.grayscale = grayscale;
  return t;
}

uint64_t ImageListHash(const datasets::LmdbSource& source) {
  uint64_t h = kFnvOffset;
  for (const datasets::LabelEntry& e : source.entries()) {
    const std::string key = datasets::LmdbKey(e);
    h = Fnv1a64(key.data(), key.size() + 1, h);  // with the NUL: "ab","c" != "a","bc"
  }
  return h;
}

absl::StatusOr<at::Tensor> BuildTeacherCache(const datasets::LmdbSource& source, const DescriptorTeacher& teacher,
                                             const TeacherCacheOptions& options) {
  if (options.batch_size <= 0) return absl::InvalidArgumentError("teacher cache: batch_size must be > 0");
  const int side = teacher.input_side();
  CacheHeader header;
  header.images = source.size();
  header.dims = teacher.descriptor_size();
  header.list_hash = ImageListHash(source);
  header.input_hash = InputFingerprint(teacher, options.grayscale);
  at::Tensor descriptors = torch::zeros({header.images, kViews, header.dims}, torch::kFloat32);
  ASSIGN_OR_RETURN(header.done, LoadCache(options.path, header, descriptors));
  if (header.done == header.images) {
    LOG(INFO) << "Teacher cache " << options.path << ": reusing the descriptors of " << header.images << " images";
    return descriptors;
  }
  if (header.done > 0) LOG(INFO) << "Teacher cache " << options.path << ": resuming at image " << header.done;
  const datasets::TransformOptions transform = TeacherTransform(side, options.grayscale);
  ASSIGN_OR_RETURN(std::unique_ptr<datasets::ExampleSource::Context> context, source.NewContext());
  ProgressMeter progress("teacher cache", header.images, 10.0);
  progress.Skip(header.done);
  auto last_save = std::chrono::steady_clock::now();
  while (header.done < header.images) {
    const int64_t n = std::min<int64_t>(options.batch_size, header.images - header.done);
    at::Tensor inputs = torch::empty({n, 3, side, side}, torch::kFloat32);
    for (int64_t i = 0; i < n; ++i) {
      cv::Mat rgb;
      RETURN_IF_ERROR(source.Read(header.done + i, context.get(), &rgb));
      RETURN_IF_ERROR(datasets::ApplyTransform(rgb, transform, nullptr, inputs[i].data_ptr<float>()));
    }
    absl::StatusOr<at::Tensor> out = teacher.Describe(torch::cat({inputs, inputs.flip({3})}));
    if (out.ok() && (out->sizes().vec() != std::vector<int64_t>{2 * n, header.dims} ||
                     out->scalar_type() != torch::kFloat32)) {
      const std::string got = absl::StrCat("[", absl::StrJoin(out->sizes(), ", "), "] ", std::string(out->dtype().name()));
      out = absl::InternalError(
          absl::StrCat("the teacher returned ", got, ", expected [", 2 * n, ", ", header.dims, "] float"));
    }
    if (!out.ok()) {
      // Keep what was computed: a rerun resumes from here.
      if (header.done > 0) RETURN_IF_ERROR(SaveCache(options.path, header, descriptors));
      return absl::Status(out.status().code(), absl::StrCat("teacher on images ", header.done, "..",
                                                            header.done + n - 1, ": ", out.status().message()));
    }
    descriptors.slice(0, header.done, header.done + n).copy_(out->view({kViews, n, header.dims}).transpose(0, 1));
    header.done += n;
    progress.Add(n);
    const auto now = std::chrono::steady_clock::now();
    if (header.done == header.images ||
        std::chrono::duration<double>(now - last_save).count() >= options.save_seconds) {
      RETURN_IF_ERROR(SaveCache(options.path, header, descriptors));
      last_save = now;
    }
  }
  progress.Finish(absl::StrCat("saved ", options.path));
  return descriptors;
}

StudentBatch MirrorWithTargets(const datasets::Batch& batch, const at::Tensor& descriptors, double flip_p,
                               uint64_t seed) {
  const int64_t n = batch.images.size(0);
  std::vector<int64_t> views(n);
  for (int64_t i = 0; i < n; ++i) {
    std::mt19937_64 rng(
        datasets::MixSeed(seed, {kFlipStream, uint64_t(batch.epoch), uint64_t(batch.batch_index), uint64_t(i)}));
    views[i] = std::uniform_real_distribution<double>(0, 1)(rng) < flip_p ? 1 : 0;
  }
  const at::Tensor view = torch::tensor(views, torch::kLong);
  const at::Tensor mirrored = view.to(torch::kBool).view({n, 1, 1, 1});
  const at::Device device = descriptors.device();
  StudentBatch out;
  out.images = torch::where(mirrored, batch.images.flip({3}), batch.images);
  out.targets = descriptors.index({torch::tensor(batch.indices, torch::kLong).to(device), view.to(device)});
  return out;
}

DescriptorStudentImpl::DescriptorStudentImpl(const ModelConfig& backbone, int descriptor_size) {
  feat_net_ = register_module("feat_net", ResNet(backbone, std::vector<std::string>{"layer4"}));
  fc_ = register_module("fc", torch::nn::Linear(FeatureDim(backbone), descriptor_size));
}

torch::Tensor DescriptorStudentImpl::forward(const torch::Tensor& images) {
  const torch::Tensor pooled =
      torch::adaptive_avg_pool2d(feat_net_->ForwardLayer4(0, feat_net_->ForwardTrunk(images)), {1, 1}).flatten(1);
  return fc_(pooled);
}

torch::Tensor DescriptorLoss(const torch::Tensor& student, const torch::Tensor& teacher) {
  return (1 - torch::cosine_similarity(student, teacher, /*dim=*/1, /*eps=*/1e-8)).mean();
}

}  // namespace dmue::training
