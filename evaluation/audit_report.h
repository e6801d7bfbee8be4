// The label audit's torch-free half: ranking of training samples by how
// likely their label is ambiguous or wrong, agreement of mined latent
// distributions with human votes, and the outputs (audit.csv,
// audit_summary.json, audit_top.png contact sheet, self-contained audit.html).
//
// Ranking ("suspicion", highest first, rank 1 = most suspicious), default
// RankBy::kCombined:
//   suspicion = (1 - p_main(given label)) * (0.5 + 0.5 * R_class(1 - score))
// where p_main is the main branch's softmax probability of the given label
// (low = the model puts its mass off the given label), score DMUE's pairwise
// uncertainty score (sigmoid of project_w; low = the label is trusted less),
// and R_class(x) the normalised average rank of x, in [0, 1] ((rank - 1) /
// (n - 1); 0 when n = 1), among the samples with the same given label. The
// score is ranked within its class because its one-hot input adds a
// per-class offset that says nothing about the sample (it dominates when
// project_w is untrained, as in the reference, which never updates it); it
// scales the off-label mass by 0.5..1, so a low score lifts a sample the
// model already doubts. kLabelProb ranks by 1 - p_main(given label) alone,
// kScore by R_class(1 - score) alone. Ties break by example index.
//
// Agreement with human votes (samples with a vote distribution):
//   * off-label distributions: the votes with the given label zeroed and
//     renormalised, against the mined latent distribution (which is 0 at the
//     given label by construction) or, for the baseline, its softmax with the
//     given label zeroed and renormalised. Only samples with some votes off
//     the given label count here.
//   * mean_kl: mean KL(votes_off || predicted_off) (prediction floored 1e-12).
//   * mean_js: mean Jensen-Shannon divergence of the same pair (nats, in
//     [0, ln 2]; needs no floor).
//   * top2_agreement: rate at which the predicted off-label argmax equals the
//     votes' off-label argmax (the runner-up class of the votes).
//   * spearman_confidence_vs_entropy: Spearman correlation between the
//     confidence (DMUE: score; baseline: softmax of the given label) and the
//     entropy of the votes, over all samples with votes (negative = the model
//     is less confident where people disagree more).
//   * spearman_label_prob_vs_entropy: the same with p(given label) for DMUE's
//     main branch (equal to the above for the baseline).
//
// Finding flipped labels (audits of a run trained with label_noise_rate, the
// given labels being the noisy ones it trained on; `clean_label` >= 0 marks a
// flipped sample):
//   * precision_at_flipped: the share of flipped samples among the K most
//     suspicious, K = the number flipped (= recall at K);
//   * roc_auc: the probability that a flipped sample is ranked above a clean
//     one (ties count half);
//   * clean_label_recovered: the share of flipped samples whose prediction is
//     their clean label.
// DMUE ranks by `suspicion`, the baseline by 1 - its softmax of the label.
#ifndef EVALUATION_AUDIT_REPORT_H_
#define EVALUATION_AUDIT_REPORT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dmue::evaluation {

struct AuditRecord {
  int64_t index = 0;  // example index in the data
  std::string key;
  int label = 0;  // given label
  double score = 0;        // uncertainty score against the whole audited set
  double batch_score = 0;  // ForwardTrain's score within its (padded) batch
  double label_prob = 0;   // main-branch softmax of the given label
  int predicted = 0;       // main-branch argmax
  std::vector<double> mined;     // [C] latent distribution, 0 at `label`
  std::vector<double> votes;     // [C] normalised human votes (empty: none)
  std::vector<double> baseline;  // [C] baseline softmax (empty: none)
  int clean_label = -1;          // the label before a flip (-1: not flipped)
  double suspicion = 0;
  int64_t rank = 0;  // 1 = most suspicious
};

enum class RankBy { kCombined, kLabelProb, kScore };
// "combined", "label_prob", "score".
absl::StatusOr<RankBy> ParseRankBy(const std::string& name);
const char* RankByFormula(RankBy rank_by);

// Fills suspicion and rank; returns the record positions in rank order.
std::vector<size_t> RankRecords(std::vector<AuditRecord>* records, RankBy rank_by = RankBy::kCombined);

// `distribution` with `label` zeroed, renormalised (all zero if nothing is left).
std::vector<double> OffLabel(const std::vector<double>& distribution, int label);

struct Agreement {
  int64_t count_votes = 0;      // samples with votes
  int64_t count_off_label = 0;  // ... with votes off the given label
  double mean_kl = 0;
  double mean_js = 0;
  double top2_agreement = 0;
  double spearman_confidence_vs_entropy = 0;
  double spearman_label_prob_vs_entropy = 0;
};

// DMUE (mined distribution, score) or baseline (softmax) agreement; nullopt
// when no record has votes (or, for the baseline, no record has one).
std::optional<Agreement> DmueAgreement(const std::vector<AuditRecord>& records);
std::optional<Agreement> BaselineAgreement(const std::vector<AuditRecord>& records);

struct NoiseRecovery {
  int64_t count = 0;
  int64_t flipped = 0;
  double precision_at_flipped = 0;
  double roc_auc = 0;
  double clean_label_recovered = 0;
};

// nullopt when no record is flipped (or, for the baseline, none has one).
// DmueNoiseRecovery needs RankRecords to have run.
std::optional<NoiseRecovery> DmueNoiseRecovery(const std::vector<AuditRecord>& records);
std::optional<NoiseRecovery> BaselineNoiseRecovery(const std::vector<AuditRecord>& records);

struct AuditSummary {
  std::string checkpoint;
  std::string model_spec;  // its ModelSpec file ("": none)
  std::string baseline_checkpoint;
  std::string data;
  std::vector<std::string> class_names;
  double temperature = 1.2;
  RankBy rank_by = RankBy::kCombined;
  int64_t count = 0;
  int64_t padded_samples = 0;  // filler samples added to satisfy CheckBatch
  double seconds = 0;
  double images_per_second = 0;
  std::optional<Agreement> dmue;
  std::optional<Agreement> baseline;
  std::string noisy_labels;  // the run's noisy_labels.txt ("": clean labels)
  std::optional<NoiseRecovery> dmue_noise;
  std::optional<NoiseRecovery> baseline_noise;
};

// Rows in rank order.
std::string AuditCsv(const std::vector<AuditRecord>& records, const std::vector<size_t>& order,
                     const std::vector<std::string>& class_names);
std::string AuditSummaryJson(const AuditSummary& summary);
std::string AuditSummaryText(const AuditSummary& summary);

// Writes audit.csv, audit_summary.json, audit_top.png (the top `top_k`) and
// audit.html (self-contained: pictures embedded as base64 PNG) to `dir`.
// `read_image(index)` returns the RGB image of an example.
absl::Status WriteAuditOutputs(const AuditSummary& summary, const std::vector<AuditRecord>& records,
                               const std::vector<size_t>& order, int top_k,
                               const std::function<absl::StatusOr<cv::Mat>(int64_t)>& read_image,
                               const std::string& dir);

}  // namespace dmue::evaluation

#endif  // EVALUATION_AUDIT_REPORT_H_
