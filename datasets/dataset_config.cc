#include "datasets/dataset_config.h"

#include <unordered_map>
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "datasets/example_source.h"
#include "datasets/seed.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/config/text_proto.h"

namespace dmue::datasets {
namespace {

constexpr FieldErrors kFieldError("DatasetConfig");

bool IsProbability(float p) { return p >= 0.0f && p <= 1.0f; }

}  // namespace

absl::Status ValidateDatasetConfig(const DatasetConfig& c) {
  if (c.lmdb_path().empty()) return kFieldError("lmdb_path", "is required");
  if (c.list_path().empty()) return kFieldError("list_path", "is required");
  if (c.list_format() == DatasetConfig::LIST_FORMAT_UNSPECIFIED) {
    return kFieldError("list_format", "must be REFERENCE, RAFDB, FERPLUS or FOLDER");
  }
  if (c.label_mode() == DatasetConfig::LABEL_MODE_UNSPECIFIED) {
    return kFieldError("label_mode", "must be MAJORITY, PLURALITY or DISTRIBUTION");
  }
  if (c.list_format() == DatasetConfig::FERPLUS && c.num_classes() != 8) {
    return kFieldError("num_classes", "FERPLUS lists have 8 classes");
  }
  if (c.num_classes() < 2 || c.num_classes() > 1000) {
    return kFieldError("num_classes", absl::StrCat("must be in [2, 1000], got ", c.num_classes()));
  }
  if (c.resize() < 0 || c.resize() > 4096)
    return kFieldError("resize", absl::StrCat("must be in [0, 4096], got ", c.resize()));
  if (c.crop() < 1 || c.crop() > 4096) return kFieldError("crop", absl::StrCat("must be in [1, 4096], got ", c.crop()));
  if (c.resize() > 0 && c.crop() > c.resize()) {
    return kFieldError("crop", absl::StrCat("crop ", c.crop(), " is larger than resize ", c.resize()));
  }
  const AugmentationConfig& a = c.augmentation();
  if (!IsProbability(a.gaussian_noise_p())) return kFieldError("augmentation.gaussian_noise_p", "must be in [0, 1]");
  if (!(a.gaussian_noise_var() >= 0)) return kFieldError("augmentation.gaussian_noise_var", "must be >= 0");
  if (!IsProbability(a.flip_p())) return kFieldError("augmentation.flip_p", "must be in [0, 1]");
  if (!IsProbability(a.erasing_p())) return kFieldError("augmentation.erasing_p", "must be in [0, 1]");
  if (!(a.erasing_scale_min() > 0 && a.erasing_scale_min() <= a.erasing_scale_max() && a.erasing_scale_max() <= 1)) {
    return kFieldError("augmentation.erasing_scale_min", "need 0 < erasing_scale_min <= erasing_scale_max <= 1");
  }
  if (!(a.erasing_ratio_min() > 0 && a.erasing_ratio_min() <= a.erasing_ratio_max())) {
    return kFieldError("augmentation.erasing_ratio_min", "need 0 < erasing_ratio_min <= erasing_ratio_max");
  }
  if (!IsProbability(a.affine_p())) return kFieldError("augmentation.affine_p", "must be in [0, 1]");
  if (!(a.rotation_deg() >= 0 && a.rotation_deg() <= 180)) {
    return kFieldError("augmentation.rotation_deg", "must be in [0, 180]");
  }
  if (!(a.scale_min() > 0 && a.scale_min() <= a.scale_max() && a.scale_max() <= 4)) {
    return kFieldError("augmentation.scale_min", "need 0 < scale_min <= scale_max <= 4");
  }
  if (!(a.shear_deg() >= 0 && a.shear_deg() < 80)) return kFieldError("augmentation.shear_deg", "must be in [0, 80)");
  if (!(a.translate() >= 0 && a.translate() <= 0.5))
    return kFieldError("augmentation.translate", "must be in [0, 0.5]");
  if (!(c.normalize_std() > 0)) return kFieldError("normalize_std", "must be > 0");
  if (c.batch_size() < 1) return kFieldError("batch_size", absl::StrCat("must be >= 1, got ", c.batch_size()));
  if (c.num_workers() < 1 || c.num_workers() > 64) {
    return kFieldError("num_workers", absl::StrCat("must be in [1, 64], got ", c.num_workers()));
  }
  if (c.prefetch_batches() < 1) return kFieldError("prefetch_batches", "must be >= 1");
  if (c.sampler() == DatasetConfig::SAMPLER_KIND_UNSPECIFIED) {
    return kFieldError("sampler", "must be CLASS_BALANCED, SHUFFLED or SEQUENTIAL");
  }
  if (c.num_samples() < 0) return kFieldError("num_samples", "must be >= 0");
  if (!(c.label_noise_rate() >= 0 && c.label_noise_rate() < 1)) {
    return kFieldError("label_noise_rate", absl::StrCat("must be in [0, 1), got ", c.label_noise_rate()));
  }
  if (c.label_noise_rate() > 0 && c.soft_labels()) {
    return kFieldError("label_noise_rate", "flips hard labels; soft_labels would train on the clean distributions");
  }
  if (c.min_per_class() < 0) return kFieldError("min_per_class", "must be >= 0");
  if (c.min_per_class() > 0 && c.sampler() != DatasetConfig::SHUFFLED) {
    return kFieldError("min_per_class", "only the SHUFFLED sampler tops batches up");
  }
  if (int64_t(c.min_per_class()) * c.num_classes() > c.batch_size()) {
    return kFieldError("min_per_class",
                       absl::StrCat("x num_classes (", c.num_classes(), ") exceeds batch_size ", c.batch_size()));
  }
  if (c.num_samples() > 0 && c.sampler() != DatasetConfig::CLASS_BALANCED) {
    return kFieldError("num_samples", "only CLASS_BALANCED draws a set number of samples");
  }
  return absl::OkStatus();
}

absl::StatusOr<DatasetConfig> LoadDatasetConfig(const std::string& path) {
  ASSIGN_OR_RETURN(DatasetConfig config, LoadTextProto<DatasetConfig>(path));
  if (absl::Status s = ValidateDatasetConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return config;
}

TransformOptions ToTransformOptions(const DatasetConfig& c) {
  TransformOptions t = c.augment() ? TrainTransform(c.resize(), c.crop()) : EvalTransform(c.resize(), c.crop());
  const AugmentationConfig& a = c.augmentation();
  t.noise_p = a.gaussian_noise_p();
  t.noise_var = a.gaussian_noise_var();
  t.random_crop = a.random_crop();
  t.flip_p = a.flip_p();
  t.erase_p = a.erasing_p();
  t.erase_scale_min = a.erasing_scale_min();
  t.erase_scale_max = a.erasing_scale_max();
  t.erase_ratio_min = a.erasing_ratio_min();
  t.erase_ratio_max = a.erasing_ratio_max();
  t.erase_value = a.erasing_value();
  t.affine_p = a.affine_p();
  t.rotation_deg = a.rotation_deg();
  t.scale_min = a.scale_min();
  t.scale_max = a.scale_max();
  t.shear_deg = a.shear_deg();
  t.translate = a.translate();
  t.mean = c.normalize_mean();
  t.std = c.normalize_std();
  t.grayscale = c.grayscale();
  return t;
}

SamplerOptions ToSamplerOptions(const DatasetConfig& c, int rank, int world_size) {
  SamplerOptions s;
  switch (c.sampler()) {
    case DatasetConfig::SEQUENTIAL: s.kind = SamplerKind::kSequential; break;
    case DatasetConfig::SHUFFLED: s.kind = SamplerKind::kShuffled; break;
    default: s.kind = SamplerKind::kClassBalanced; break;
  }
  s.seed = c.seed();
  s.num_samples = c.num_samples();
  s.rank = rank;
  s.world_size = world_size;
  s.even_shards = c.sampler() != DatasetConfig::SEQUENTIAL;
  s.min_per_class = c.min_per_class();
  s.batch_size = c.batch_size();
  return s;
}

LoaderOptions ToLoaderOptions(const DatasetConfig& c) {
  LoaderOptions l;
  l.batch_size = c.batch_size();
  l.num_workers = c.num_workers();
  l.prefetch_batches = c.prefetch_batches();
  l.drop_last = c.drop_last();
  l.transform = ToTransformOptions(c);
  l.soft_labels = c.soft_labels();
  l.num_classes = c.num_classes();
  l.seed = MixSeed(c.seed(), {0x617567ULL});  // independent of the sampler stream
  return l;
}

ListFormat ToListFormat(DatasetConfig::ListFormat format) {
  switch (format) {
    case DatasetConfig::RAFDB: return ListFormat::kRafDb;
    case DatasetConfig::FERPLUS: return ListFormat::kFerPlus;
    case DatasetConfig::FOLDER: return ListFormat::kFolder;
    default: return ListFormat::kReference;
  }
}

ParseOptions ToParseOptions(const DatasetConfig& c) {
  ParseOptions p;
  p.default_split = c.split().empty() ? "train" : c.split();
  p.only_split = c.split();
  p.num_classes = c.num_classes();
  switch (c.label_mode()) {
    case DatasetConfig::PLURALITY: p.ferplus_mode = FerPlusLabelMode::kPlurality; break;
    case DatasetConfig::DISTRIBUTION: p.ferplus_mode = FerPlusLabelMode::kDistribution; break;
    default: p.ferplus_mode = FerPlusLabelMode::kMajority; break;
  }
  return p;
}

std::string FormatNoisyLabels(const std::vector<NoisyLabel>& noisy) {
  std::string out;
  for (const NoisyLabel& n : noisy) absl::StrAppend(&out, n.key, " ", n.clean, " ", n.noisy, "\n");
  return out;
}

absl::StatusOr<std::vector<NoisyLabel>> ParseNoisyLabels(absl::string_view text, absl::string_view source) {
  std::vector<NoisyLabel> out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    NoisyLabel n;
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[1], &n.clean) || !absl::SimpleAtoi(fields[2], &n.noisy) ||
        n.clean < 0 || n.noisy < 0 || n.clean == n.noisy) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number,
                                                     ": expected '<key> <clean label> <other noisy label>'"));
    }
    n.key = std::string(fields[0]);
    out.push_back(std::move(n));
  }
  return out;
}

absl::Status ApplyNoisyLabels(const std::vector<NoisyLabel>& noisy, absl::string_view source,
                              std::vector<LabelEntry>* entries) {
  std::unordered_map<std::string, size_t> position;
  for (size_t i = 0; i < entries->size(); ++i) position.emplace(LmdbKey((*entries)[i]), i);
  for (const NoisyLabel& n : noisy) {
    auto it = position.find(n.key);
    if (it == position.end()) {
      return absl::NotFoundError(absl::StrCat(source, ": '", n.key, "' is not in the list"));
    }
    LabelEntry& e = (*entries)[it->second];
    if (e.label != n.clean) {
      return absl::FailedPreconditionError(absl::StrCat(source, ": '", n.key, "' has label ", e.label,
                                                        " in the list, not the clean label ", n.clean));
    }
    e.label = n.noisy;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<LmdbSource>> OpenSource(const DatasetConfig& config, std::vector<NoisyLabel>* noisy) {
  RETURN_IF_ERROR(ValidateDatasetConfig(config));
  ASSIGN_OR_RETURN(LabelList list,
                   ReadLabelList(config.list_path(), ToListFormat(config.list_format()), ToParseOptions(config)));
  if (list.entries.empty()) {
    return kFieldError("list_path",
                       absl::StrCat("'", config.list_path(), "' has no entries for split '", config.split(), "'"));
  }
  if (config.label_noise_rate() > 0) {
    std::vector<int> clean;
    for (const LabelEntry& e : list.entries) clean.push_back(e.label);
    absl::StatusOr<std::vector<int64_t>> changed = InjectSymmetricLabelNoise(
        &list.entries, config.label_noise_rate(), config.num_classes(), config.label_noise_seed());
    if (!changed.ok()) return kFieldError.Nested("label_noise_rate", changed.status());
    for (int64_t i : *changed) {
      if (noisy != nullptr) noisy->push_back({LmdbKey(list.entries[i]), clean[i], list.entries[i].label});
    }
  }
  return LmdbSource::Open(config.lmdb_path(), std::move(list.entries));
}

absl::StatusOr<std::unique_ptr<Loader>> MakeLoaderOver(const DatasetConfig& config,
                                                       std::shared_ptr<const ExampleSource> source, int rank,
                                                       int world_size) {
  ASSIGN_OR_RETURN(Sampler sampler, Sampler::Create(ToSamplerOptions(config, rank, world_size), source->Labels()));
  return Loader::Create(std::move(source), std::move(sampler), ToLoaderOptions(config));
}

absl::StatusOr<std::unique_ptr<Loader>> MakeLoader(const DatasetConfig& config, int rank, int world_size,
                                                   std::vector<NoisyLabel>* noisy) {
  ASSIGN_OR_RETURN(std::shared_ptr<LmdbSource> source, OpenSource(config, noisy));
  return MakeLoaderOver(config, std::move(source), rank, world_size);
}

}  // namespace dmue::datasets
