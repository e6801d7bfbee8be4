#include "evaluation/audit.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "datasets/transforms.h"
#include "dmue/losses.h"
#include "dmue/base/status_macros.h"
#include "dmue/compute.h"
#include "dmue/dmue_model.h"
#include "dmue/util/progress.h"
#include "dmue/metrics/metrics.h"
#include "inference/classifier.h"

namespace dmue::evaluation {
namespace {

absl::StatusOr<std::shared_ptr<torch::nn::SequentialImpl>> ProjectW(DmueModel& model) {
  for (const auto& child : model->named_children()) {
    if (child.key() != "project_w") continue;
    auto sequential = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(child.value());
    if (sequential) return sequential;
  }
  return absl::InternalError("the DMUE model has no project_w Sequential");
}

// Two transformed samples per class (any sample when a class has none; the
// filler's label, not its image, decides which branch runs).
absl::Status MakeFillers(const EvalData& data, torch::Tensor* images, torch::Tensor* labels) {
  const int num_classes = data.num_classes;
  const std::vector<int> all_labels = data.source->Labels();
  ASSIGN_OR_RETURN(std::unique_ptr<datasets::ExampleSource::Context> context, data.source->NewContext());
  const int crop = data.transform.crop;
  *images = torch::empty({2 * num_classes, 3, crop, crop});
  *labels = torch::empty({2 * num_classes}, torch::kLong);
  for (int c = 0; c < num_classes; ++c) {
    std::vector<int64_t> members;
    for (size_t i = 0; i < all_labels.size() && members.size() < 2; ++i) {
      if (all_labels[i] == c) members.push_back(int64_t(i));
    }
    if (members.empty()) members.push_back(0);
    if (members.size() == 1) members.push_back(members[0]);
    for (int k = 0; k < 2; ++k) {
      cv::Mat rgb;
      RETURN_IF_ERROR(data.source->Read(members[k], context.get(), &rgb));
      RETURN_IF_ERROR(
          datasets::ApplyTransform(rgb, data.transform, nullptr, (*images)[2 * c + k].data_ptr<float>()));
      (*labels)[2 * c + k] = c;
    }
  }
  return absl::OkStatus();
}

// Row i of a contiguous [N, C] double tensor.
std::vector<double> Row(const torch::Tensor& t, int64_t i) {
  const double* data = t.data_ptr<double>() + i * t.size(1);
  return std::vector<double>(data, data + t.size(1));
}

// On the host, where the records read it (no copy for a CPU double tensor).
torch::Tensor AsDouble(const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble).contiguous(); }

}  // namespace

absl::StatusOr<torch::Tensor> DatasetScores(DmueModel& model, const torch::Tensor& features,
                                            const torch::Tensor& host_labels) {
  const int num_classes = model->num_classes();
  const torch::Tensor labels = host_labels.to(features.device());
  torch::NoGradGuard no_grad;
  const torch::Tensor counts = torch::bincount(labels, {}, num_classes);
  for (int c = 0; c < num_classes; ++c) {
    if (counts[c].item<int64_t>() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class ", c, " has no sample in the audited set; the pairwise statistics need every class"));
    }
  }
  const torch::Tensor normalized =
      features / torch::linalg_vector_norm(features, 2, {1}, /*keepdim=*/true);
  torch::Tensor means = torch::zeros({num_classes, features.size(1)}, features.options());
  means.index_add_(0, labels, normalized);
  means = means / counts.to(features.dtype()).unsqueeze(1);
  torch::Tensor cos_mean = normalized.mm(means.t());
  const torch::Tensor row_min = std::get<0>(cos_mean.min(1, /*keepdim=*/true));
  const torch::Tensor row_max = std::get<0>(cos_mean.max(1, /*keepdim=*/true));
  cos_mean = (cos_mean - row_min) / (row_max - row_min);
  const torch::Tensor one_hot =
      torch::zeros({labels.size(0), num_classes}, features.options()).scatter_(1, labels.unsqueeze(1), 1);
  ASSIGN_OR_RETURN(std::shared_ptr<torch::nn::SequentialImpl> project_w, ProjectW(model));
  return torch::sigmoid(project_w->forward(torch::cat({cos_mean, one_hot}, 1))).squeeze(1);
}

absl::StatusOr<AuditRun> RunAudit(LoadedDmue& model, const EvalData& data, LoadedClassifier* baseline,
                                  const AuditOptions& options) {
  const int num_classes = model.info.num_classes;
  if (data.num_classes != num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the data has ", data.num_classes, " classes but the checkpoint has ", num_classes));
  }
  if (baseline != nullptr && baseline->info.num_classes != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat("the baseline has ", baseline->info.num_classes,
                                                   " classes but the DMUE checkpoint has ", num_classes));
  }
  if (!(options.temperature > 0)) return absl::InvalidArgumentError("--temperature must be > 0");
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor filler_images, filler_labels;
  RETURN_IF_ERROR(MakeFillers(data, &filler_images, &filler_labels));
  ASSIGN_OR_RETURN(std::unique_ptr<datasets::Loader> loader, MakeEvalLoader(data));

  ComputeOptions compute;
  compute.channels_last = options.channels_last;
  ASSIGN_OR_RETURN(compute.device, ResolveDevice(options.device, "AuditOptions.device"));
  MoveToDevice(*model.model, compute.device);
  SetChannelsLast(*model.model, options.channels_last);
  model.model->eval();
  // The baseline runs as the evaluator runs a model (inference/, fp32).
  std::unique_ptr<inference::Classifier> baseline_model;
  if (baseline != nullptr) {
    inference::ClassifierOptions fp32;
    fp32.precision = inference::PrecisionChoice::kFloat32;
    fp32.channels_last = options.channels_last;
    fp32.device = options.device;
    ASSIGN_OR_RETURN(baseline_model,
                     inference::Classifier::FromModel(baseline->model, num_classes, data.transform.crop, fp32));
  }

  AuditRun run;
  std::vector<torch::Tensor> features;
  std::vector<int64_t> feature_labels;
  ProgressMeter meter("audit", data.source->size(), options.progress ? 5.0 : 1e9);
  torch::NoGradGuard no_grad;
  loader->StartEpoch(0);
  while (true) {
    ASSIGN_OR_RETURN(std::optional<datasets::Batch> next, loader->Next());
    if (!next.has_value()) break;
    const datasets::Batch& batch = *next;
    const int64_t b = batch.labels.size(0);
    torch::Tensor images = batch.images, labels = batch.labels;
    // Pad with fillers until every class has 2 samples.
    const torch::Tensor counts = torch::bincount(labels, {}, num_classes);
    std::vector<int64_t> extra;
    for (int c = 0; c < num_classes; ++c) {
      for (int64_t k = counts[c].item<int64_t>(); k < 2; ++k) extra.push_back(2 * c + k);
    }
    if (!extra.empty()) {
      const torch::Tensor pick = torch::tensor(extra, torch::kLong);
      images = torch::cat({images, filler_images.index_select(0, pick)});
      labels = torch::cat({labels, filler_labels.index_select(0, pick)});
      run.padded_samples += int64_t(extra.size());
    }
    labels = labels.to(compute.device);
    ASSIGN_OR_RETURN(TrainForwardOutput out, model.model->ForwardTrain(PrepareImages(images, compute), labels));
    using torch::indexing::Slice;
    const torch::Tensor mined =
        AsDouble(LatentSoftLabels(out.latent_logits, labels, num_classes, options.temperature).index({Slice(0, b)}));
    const torch::Tensor probs = AsDouble(torch::softmax(out.logits.index({Slice(0, b)}), 1));
    const torch::Tensor batch_score = AsDouble(out.score.index({Slice(0, b)}));
    features.push_back(out.main_pooled.index({Slice(0, b)}).contiguous());
    torch::Tensor baseline_probs;
    if (baseline_model != nullptr) {
      ASSIGN_OR_RETURN(const torch::Tensor p, baseline_model->Probabilities(batch.images));
      baseline_probs = AsDouble(p);
    }
    const auto given = batch.labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < b; ++i) {
      AuditRecord r;
      r.index = batch.indices[i];
      r.key = data.keys[r.index];
      r.label = int(given[i]);
      r.batch_score = batch_score.data_ptr<double>()[i];
      r.mined = Row(mined, i);
      const std::vector<double> p = Row(probs, i);
      r.label_prob = p[r.label];
      r.predicted = int(std::max_element(p.begin(), p.end()) - p.begin());
      const std::vector<float>& votes = data.source->distribution(r.index);
      if (!votes.empty()) r.votes = Normalized(std::vector<double>(votes.begin(), votes.end()));
      if (baseline != nullptr) r.baseline = Row(baseline_probs, i);
      feature_labels.push_back(r.label);
      run.records.push_back(std::move(r));
    }
    meter.Add(b);
  }
  meter.Finish();
  if (run.records.empty()) return absl::InvalidArgumentError(absl::StrCat(data.description, ": no examples"));
  absl::StatusOr<torch::Tensor> scores =
      DatasetScores(model.model, torch::cat(features), torch::tensor(feature_labels, torch::kLong));
  if (!scores.ok()) return absl::InvalidArgumentError(absl::StrCat(data.description, ": ", scores.status().message()));
  const torch::Tensor s = AsDouble(*scores);
  for (size_t i = 0; i < run.records.size(); ++i) run.records[i].score = s.data_ptr<double>()[i];
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.images_per_second = run.seconds > 0 ? double(run.records.size()) / run.seconds : 0;
  return run;
}

}  // namespace dmue::evaluation
