// The label audit's model half: for every sample of a (training) set, the
// latent distribution DMUE's auxiliary branches mine and its pairwise
// uncertainty score, computed with a multi-branch checkpoint in eval mode.
//
// Mined distribution: DmueModel::ForwardTrain in eval mode (BatchNorm uses
// running statistics, dropout is off, so each sample's outputs do not depend
// on its batch) gives, for a sample of label c, the C - 1 logits of auxiliary
// branch c; dmue::LatentSoftLabels turns them into the training target
// (softmax, ^(1/T), renormalised, spread to C classes with 0 at c). Batches
// must hold >= 2 samples of every class (CheckBatch): batches that do not are
// padded with filler samples (2 per class, chosen once) whose outputs are
// discarded.
//
// Score: the reference computes it within a training batch (cosine
// similarities of the main-branch pooled features, averaged per class over
// the batch, min-max normalised per row, with the one-hot label, through
// project_w and a sigmoid), so it depends on the batch. The audit uses the
// whole audited set as the "batch": mean_j cos(f_i, f_j) over class c equals
// f_i/|f_i| . mean_j f_j/|f_j|, so the statistics cost O(N C D). project_w is
// reached through named_children(). On a set that is one valid batch this is
// exactly ForwardTrain's score (tested); the per-batch score is kept too
// (batch_score).
#ifndef EVALUATION_AUDIT_H_
#define EVALUATION_AUDIT_H_

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "evaluation/audit_report.h"
#include "evaluation/eval_data.h"
#include "evaluation/model_loading.h"

namespace dmue::evaluation {

struct AuditOptions {
  double temperature = 1.2;  // the reference's T
  bool channels_last = true;
  bool progress = true;
  // "cpu", "cuda" or "cuda:N"; the DMUE model and the baseline run there.
  std::string device = "cpu";
};

struct AuditRun {
  std::vector<AuditRecord> records;  // data order, not ranked yet
  int64_t padded_samples = 0;
  double seconds = 0;
  double images_per_second = 0;
};

// `baseline` (optional) is run on the same images.
absl::StatusOr<AuditRun> RunAudit(LoadedDmue& model, const EvalData& data, LoadedClassifier* baseline,
                                  const AuditOptions& options);

// The uncertainty score of every row of `features` ([N, D] main-branch pooled
// features) against the class means of the whole set; `labels` [N] int64.
// InvalidArgument when a class has no sample.
absl::StatusOr<torch::Tensor> DatasetScores(DmueModel& model, const torch::Tensor& features,
                                            const torch::Tensor& labels);

}  // namespace dmue::evaluation

#endif  // EVALUATION_AUDIT_H_
