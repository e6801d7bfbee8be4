// Writes the synthetic face data set: an LMDB of PNG records (keys
// train_NNNNNNN.png / val_NNNNNNN.png) plus label lists and a contact sheet.
//
//   bazel run //datasets:make_synthetic -- --output_dir=/tmp/synth \
//       --num_train=20000 --num_val=2000 --size=64 --num_classes=8 --noise=0.2
//
// Output files in --output_dir:
//   lmdb/                 the database (also holds __labels__ with all entries)
//   train_list.txt        `train_<file> <label>` (labels after --noise)
//   train_clean_list.txt  the labels before noise
//   train_soft_list.txt   clean labels + ground-truth distribution columns
//   val_list.txt          clean validation labels (+ val_soft_list.txt)
//   contact_sheet.png     examples per class (rows)
// Re-running with the same flags resumes an interrupted run.
#include <cstdio>
#include <filesystem>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "datasets/image_codec.h"
#include "datasets/label_list.h"
#include "datasets/lmdb_dataset.h"
#include "dmue/base/status_macros.h"
#include "dmue/util/progress.h"
#include "datasets/synthetic_faces.h"

DEFINE_string(output_dir, "", "Output folder (created if missing).");
DEFINE_int64(num_train, 20000, "Training images.");
DEFINE_int64(num_val, 2000, "Validation images.");
DEFINE_int32(size, 64, "Image side in pixels (32..512).");
DEFINE_int32(num_classes, 8, "7 (RAF-DB order) or 8 (FERPlus order); 2..8 allowed.");
DEFINE_double(noise, 0.0, "Symmetric label noise rate on the training labels (e.g. 0.1, 0.2, 0.3).");
DEFINE_uint64(seed, 0, "Seed of images, mixtures and label noise.");
DEFINE_bool(color, true, "Colour images; false writes 1-channel grey PNGs.");
DEFINE_double(mixture_rate, 0.0, "Fraction of samples blending two expressions.");
DEFINE_double(max_mixture, 0.5, "Largest weight of the second expression in a mixture.");
DEFINE_bool(label_from_argmax, false, "Mixture labels: argmax (true) or sampled from the distribution.");
DEFINE_string(encoding, "png", "Record encoding: png, jpeg or raw.");
DEFINE_int32(contact_per_class, 10, "Examples per class in contact_sheet.png.");

namespace dmue::datasets {
namespace {

absl::Status Run() {
  if (FLAGS_output_dir.empty()) return absl::InvalidArgumentError("--output_dir is required");
  if (FLAGS_num_train < 0 || FLAGS_num_val < 0) return absl::InvalidArgumentError("--num_train/--num_val must be >= 0");
  SyntheticFaceOptions options;
  options.size = FLAGS_size;
  options.num_classes = FLAGS_num_classes;
  options.color = FLAGS_color;
  options.mixture_rate = float(FLAGS_mixture_rate);
  options.max_mixture = float(FLAGS_max_mixture);
  options.label_from_argmax = FLAGS_label_from_argmax;
  RETURN_IF_ERROR(ValidateSyntheticFaceOptions(options));
  ASSIGN_OR_RETURN(ImageEncoding encoding, ParseImageEncoding(FLAGS_encoding));
  std::filesystem::create_directories(FLAGS_output_dir);
  const std::string db_path = FLAGS_output_dir + "/lmdb";

  SyntheticFaceGenerator generator(options, FLAGS_seed);
  ASSIGN_OR_RETURN(std::unique_ptr<LmdbWriter> writer,
                   LmdbWriter::Open(db_path, {.encoding = encoding, .commit_every = 2000}));
  std::vector<LabelEntry> train, val;
  ProgressMeter progress("make_synthetic", FLAGS_num_train + FLAGS_num_val, 1.0);
  for (int64_t i = 0; i < FLAGS_num_train + FLAGS_num_val; ++i) {
    const bool is_train = i < FLAGS_num_train;
    LabelEntry entry;
    entry.split = is_train ? "train" : "val";
    entry.path = absl::StrFormat("%07d.png", is_train ? i : i - FLAGS_num_train);
    const std::string key = LmdbKey(entry);
    SyntheticFace face;
    if (writer->Contains(key)) {
      // Resume: labels are needed again, the image is not re-encoded.
      face = generator.Generate(i);
    } else {
      face = generator.Generate(i);
      RETURN_IF_ERROR(writer->Put(key, face.image));
    }
    entry.label = face.label;
    entry.distribution = face.distribution;
    (is_train ? train : val).push_back(std::move(entry));
    progress.Add(1);
  }
  progress.Finish();

  std::vector<LabelEntry> noisy = train;
  if (FLAGS_noise > 0) {
    ASSIGN_OR_RETURN(std::vector<int64_t> changed,
                     InjectSymmetricLabelNoise(&noisy, FLAGS_noise, FLAGS_num_classes, FLAGS_seed ^ 0x6e6f697365ULL));
    LOG(INFO) << "label noise: changed " << changed.size() << " of " << noisy.size() << " training labels";
  }
  std::vector<LabelEntry> all = noisy;
  all.insert(all.end(), val.begin(), val.end());
  RETURN_IF_ERROR(writer->Finish(&all));

  const std::string& dir = FLAGS_output_dir;
  for (absl::Status s : {WriteLabelList(dir + "/train_list.txt", noisy), WriteLabelList(dir + "/train_clean_list.txt", train),
                         WriteLabelList(dir + "/train_soft_list.txt", train, true), WriteLabelList(dir + "/val_list.txt", val),
                         WriteLabelList(dir + "/val_soft_list.txt", val, true),
                         WriteImageFile(dir + "/contact_sheet.png", SyntheticContactSheet(generator, FLAGS_contact_per_class))}) {
    RETURN_IF_ERROR(s);
  }
  std::fprintf(stderr, "wrote %s (%lld train, %lld val), lists and contact_sheet.png\n", db_path.c_str(),
               static_cast<long long>(train.size()), static_cast<long long>(val.size()));
  return absl::OkStatus();
}

}  // namespace
}  // namespace dmue::datasets

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Writes the synthetic face data set (LMDB + label lists + contact sheet).");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  absl::Status status = dmue::datasets::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "make_synthetic: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
