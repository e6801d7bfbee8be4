#include "evaluation/eval_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "datasets/dataset_config.h"
#include "datasets/image_codec.h"
#include "datasets/label_list.h"
#include "datasets/sampler.h"
#include "dmue/base/status_macros.h"
#include "inference/face_input.h"

namespace dmue::evaluation {
namespace {

namespace fs = std::filesystem;
using datasets::DatasetConfig;

absl::StatusOr<DatasetConfig::ListFormat> ParseListFormat(const std::string& name) {
  DatasetConfig::ListFormat format;
  if (!DatasetConfig::ListFormat_Parse(absl::AsciiStrToUpper(name), &format) ||
      format == DatasetConfig::LIST_FORMAT_UNSPECIFIED || format == DatasetConfig::FOLDER) {
    return absl::InvalidArgumentError(
        absl::StrCat("--list_format: '", name, "' is not one of reference, rafdb, ferplus"));
  }
  return format;
}

absl::StatusOr<DatasetConfig::LabelMode> ParseLabelMode(const std::string& name) {
  DatasetConfig::LabelMode mode;
  if (!DatasetConfig::LabelMode_Parse(absl::AsciiStrToUpper(name), &mode) ||
      mode == DatasetConfig::LABEL_MODE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("--label_mode: '", name, "' is not one of majority, plurality, distribution"));
  }
  return mode;
}

template <typename T>
std::string Str(T value) {
  return absl::StrCat(value);
}
std::string Str(bool value) { return value ? "true" : "false"; }

// "--resize=40 disagrees with the model spec m.spec.pbtxt (input.resize 36)".
template <typename T>
absl::Status Agrees(bool given, T value, T specified, const std::string& what, const std::string& field,
                    const InputContract& contract) {
  if (!given || value == specified) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, Str(value), " disagrees with the model spec ", contract.origin,
                                                 " (input.", field, " ", Str(specified), ")"));
}

// A DatasetConfig file that sets a transform value the model was not trained
// with is refused rather than overridden in silence.
absl::Status ConfigAgrees(const DatasetConfig& config, const std::string& path, const InputContract& c) {
  const std::string field = absl::StrCat(path, ": DatasetConfig.");
  for (const absl::Status& s :
       {Agrees(config.has_resize(), config.resize(), c.resize, field + "resize ", "resize", c),
        Agrees(config.has_crop(), config.crop(), c.crop, field + "crop ", "crop", c),
        Agrees(config.has_normalize_mean(), config.normalize_mean(), c.mean, field + "normalize_mean ", "mean", c),
        Agrees(config.has_normalize_std(), config.normalize_std(), c.std, field + "normalize_std ", "std", c),
        Agrees(config.has_grayscale(), config.grayscale(), c.grayscale, field + "grayscale ", "grayscale", c)}) {
    RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

// The transform settings: the contract's when there is one, else the config's
// with the --resize / --crop overrides.
absl::Status ApplyInputSettings(const DataSpec& spec, DatasetConfig* config) {
  if (!spec.contract.has_value()) {
    if (spec.resize > 0) config->set_resize(spec.resize);
    if (spec.crop > 0) config->set_crop(spec.crop);
    return absl::OkStatus();
  }
  const InputContract& c = *spec.contract;
  RETURN_IF_ERROR(Agrees(spec.resize > 0, spec.resize, c.resize, "--resize=", "resize", c));
  RETURN_IF_ERROR(Agrees(spec.crop > 0, spec.crop, c.crop, "--crop=", "crop", c));
  if (!spec.data_config.empty()) {
    RETURN_IF_ERROR(ConfigAgrees(*config, spec.data_config, c));
  }
  config->set_resize(c.resize);
  config->set_crop(c.crop);
  config->set_normalize_mean(c.mean);
  config->set_normalize_std(c.std);
  config->set_grayscale(c.grayscale);
  return absl::OkStatus();
}

// The DatasetConfig the spec describes (not yet validated).
absl::StatusOr<DatasetConfig> ConfigFromSpec(const DataSpec& spec, int model_classes, std::string* origin) {
  const int sources = int(!spec.data_config.empty()) + int(!spec.lmdb.empty() || !spec.list.empty()) +
                      int(!spec.image_folder.empty());
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "give exactly one of --data_config, --lmdb with --list, or --image_folder");
  }
  DatasetConfig config;
  if (!spec.data_config.empty()) {
    ASSIGN_OR_RETURN(DatasetConfig loaded, datasets::LoadDatasetConfig(spec.data_config));
    config = std::move(loaded);
    *origin = spec.data_config;
    if (config.has_num_classes() && config.num_classes() != model_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.data_config, ": DatasetConfig.num_classes is ", config.num_classes(), " but the checkpoint has ",
          model_classes, " classes"));
    }
  } else if (!spec.image_folder.empty()) {
    *origin = spec.image_folder;
    config.set_list_format(DatasetConfig::FOLDER);
    config.set_list_path(spec.image_folder);
    config.set_split(spec.split);
  } else {
    if (spec.lmdb.empty() || spec.list.empty()) {
      return absl::InvalidArgumentError("--lmdb and --list go together");
    }
    *origin = absl::StrCat(spec.lmdb, " + ", spec.list);
    config.set_lmdb_path(spec.lmdb);
    config.set_list_path(spec.list);
    ASSIGN_OR_RETURN(DatasetConfig::ListFormat format, ParseListFormat(spec.list_format));
    config.set_list_format(format);
    ASSIGN_OR_RETURN(DatasetConfig::LabelMode mode, ParseLabelMode(spec.label_mode));
    config.set_label_mode(mode);
    config.set_split(spec.split);
  }
  if (config.list_format() == DatasetConfig::FERPLUS && model_classes != 8) {
    return absl::InvalidArgumentError(absl::StrCat(*origin, ": FERPlus lists have 8 classes but the checkpoint has ",
                                                   model_classes));
  }
  config.set_num_classes(model_classes);
  config.set_augment(false);
  config.set_sampler(DatasetConfig::SEQUENTIAL);
  config.set_drop_last(false);
  config.set_num_samples(0);
  RETURN_IF_ERROR(ApplyInputSettings(spec, &config));
  config.set_batch_size(spec.batch_size > 0 ? spec.batch_size : (spec.data_config.empty() ? 64 : config.batch_size()));
  config.set_num_workers(spec.num_workers > 0 ? spec.num_workers : (spec.data_config.empty() ? 2 : config.num_workers()));
  return config;
}

absl::StatusOr<std::vector<std::string>> FolderClasses(const DataSpec& spec, int model_classes) {
  std::vector<std::string> classes = spec.folder_classes;
  std::error_code ec;
  if (!fs::is_directory(spec.image_folder, ec)) {
    return absl::NotFoundError(absl::StrCat("--image_folder: '", spec.image_folder, "' is not a directory"));
  }
  if (classes.empty()) {
    for (const auto& child : fs::directory_iterator(spec.image_folder, ec)) {
      if (child.is_directory()) classes.push_back(child.path().filename().string());
    }
    std::sort(classes.begin(), classes.end());
  }
  if (int(classes.size()) != model_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image folder '", spec.image_folder, "' has ", classes.size(), " classes (", absl::StrJoin(classes, ", "),
        ") but the checkpoint has ", model_classes));
  }
  return classes;
}

// "72 -> 64, mean 0.5 std 0.5, grey": what a reader needs to redo the numbers.
std::string TransformDescription(const datasets::TransformOptions& t) {
  return absl::StrCat(t.resize, " -> ", t.crop, ", mean ", t.mean, " std ", t.std, t.grayscale ? ", grey" : "");
}

absl::Status ApplyNoisyLabelFile(const std::string& path, std::vector<datasets::LabelEntry>* entries) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open the noisy label list '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  ASSIGN_OR_RETURN(std::vector<datasets::NoisyLabel> noisy, datasets::ParseNoisyLabels(text.str(), path));
  return datasets::ApplyNoisyLabels(noisy, path, entries);
}

}  // namespace

FileSource::FileSource(std::string root, std::vector<datasets::LabelEntry> entries)
    : root_(std::move(root)), entries_(std::move(entries)) {}

absl::StatusOr<std::unique_ptr<datasets::ExampleSource::Context>> FileSource::NewContext() const {
  return std::make_unique<Context>();
}

absl::Status FileSource::Read(int64_t index, Context*, cv::Mat* rgb) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(absl::StrCat("example index ", index, " out of range"));
  }
  ASSIGN_OR_RETURN(cv::Mat image, datasets::ReadImageRgb((fs::path(root_) / entries_[index].path).string()));
  *rgb = std::move(image);
  return absl::OkStatus();
}

absl::StatusOr<EvalData> OpenEvalData(const DataSpec& spec, int model_classes) {
  std::string origin;
  ASSIGN_OR_RETURN(DatasetConfig config, ConfigFromSpec(spec, model_classes, &origin));
  EvalData data;
  data.num_classes = model_classes;
  data.batch_size = config.batch_size();
  data.num_workers = config.num_workers();
  data.transform = datasets::ToTransformOptions(config);
  // A model's spec sets the transform the way serving sets it (one owner).
  if (spec.contract.has_value()) data.transform = inference::EvalTransformFor(spec.contract->spec);
  if (absl::Status s = datasets::ValidateTransformOptions(data.transform); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", s.message()));
  }

  datasets::ParseOptions parse = datasets::ToParseOptions(config);
  parse.keep_distribution = config.list_format() == DatasetConfig::FERPLUS;
  std::vector<datasets::LabelEntry> entries;
  if (config.list_format() == DatasetConfig::FOLDER) {
    ASSIGN_OR_RETURN(std::vector<std::string> classes, FolderClasses(spec, model_classes));
    parse.folder_classes = classes;
    parse.only_split.clear();
    ASSIGN_OR_RETURN(datasets::LabelList list,
                     datasets::ReadLabelList(spec.image_folder, datasets::ListFormat::kFolder, parse));
    entries = std::move(list.entries);
  } else {
    if (absl::Status s = datasets::ValidateDatasetConfig(config); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": ", s.message()));
    }
    ASSIGN_OR_RETURN(
        datasets::LabelList list,
        datasets::ReadLabelList(config.list_path(), datasets::ToListFormat(config.list_format()), parse));
    entries = std::move(list.entries);
  }
  if (!spec.noisy_labels.empty()) {
    std::vector<int> before;
    for (const datasets::LabelEntry& e : entries) before.push_back(e.label);
    RETURN_IF_ERROR(ApplyNoisyLabelFile(spec.noisy_labels, &entries));
    for (size_t i = 0; i < entries.size(); ++i) {
      data.clean_labels.push_back(entries[i].label != before[i] ? before[i] : -1);
    }
  }
  if (spec.max_examples > 0 && int64_t(entries.size()) > spec.max_examples) entries.resize(spec.max_examples);
  if (entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin, ": no examples", config.split().empty() ? "" : absl::StrCat(" for split '", config.split(), "'"),
        " in '", config.list_path(), "'"));
  }
  for (const datasets::LabelEntry& e : entries) {
    if (!e.distribution.empty()) {
      data.has_distributions = true;
      if (int(e.distribution.size()) != model_classes) {
        return absl::InvalidArgumentError(absl::StrCat(origin, ": '", e.path, "' has a distribution over ",
                                                       e.distribution.size(), " classes, the checkpoint has ",
                                                       model_classes));
      }
    }
  }
  for (const datasets::LabelEntry& e : entries) {
    data.keys.push_back(config.list_format() == DatasetConfig::FOLDER ? e.path : datasets::LmdbKey(e));
  }
  data.description = absl::StrCat(origin, config.split().empty() ? "" : absl::StrCat(" (split ", config.split(), ")"),
                                   ", ", entries.size(), " examples, ", TransformDescription(data.transform));
  if (config.list_format() == DatasetConfig::FOLDER) {
    data.source = std::make_shared<FileSource>(spec.image_folder, std::move(entries));
  } else {
    ASSIGN_OR_RETURN(data.source, datasets::LmdbSource::Open(config.lmdb_path(), std::move(entries)));
  }
  return data;
}

absl::StatusOr<std::unique_ptr<datasets::Loader>> MakeEvalLoader(const EvalData& data) {
  datasets::SamplerOptions sampler_options;
  sampler_options.kind = datasets::SamplerKind::kSequential;
  sampler_options.even_shards = false;
  ASSIGN_OR_RETURN(datasets::Sampler sampler, datasets::Sampler::Create(sampler_options, data.source->Labels()));
  datasets::LoaderOptions options;
  options.batch_size = data.batch_size;
  options.num_workers = data.num_workers;
  options.prefetch_batches = std::max(2, 2 * data.num_workers);
  options.drop_last = false;
  options.transform = data.transform;
  options.num_classes = data.num_classes;
  return datasets::Loader::Create(data.source, std::move(sampler), options);
}

absl::StatusOr<cv::Mat> ReadExampleImage(const EvalData& data, int64_t index) {
  ASSIGN_OR_RETURN(std::unique_ptr<datasets::ExampleSource::Context> context, data.source->NewContext());
  cv::Mat rgb;
  RETURN_IF_ERROR(data.source->Read(index, context.get(), &rgb));
  return rgb.clone();
}

}  // namespace dmue::evaluation
