#include "evaluation/audit_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>

#include <opencv2/imgproc.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dmue/base/files.h"
#include "dmue/base/image_write.h"
#include "dmue/base/status_macros.h"
#include "evaluation/charts.h"
#include "dmue/metrics/metrics.h"
#include "evaluation/report.h"

namespace dmue::evaluation {
namespace {

std::vector<double> NormalisedRanks(const std::vector<double>& values) {
  std::vector<double> ranks = AverageRanks(values);
  const double n = double(values.size());
  for (double& r : ranks) r = n > 1 ? (r - 1) / (n - 1) : 0.0;
  return ranks;
}

std::string Html(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Name(const std::vector<std::string>& names, int c) {
  return c >= 0 && c < int(names.size()) ? names[c] : std::to_string(c);
}

std::string Distribution(const std::vector<double>& d, const std::vector<std::string>& names) {
  std::vector<std::pair<double, int>> items;
  for (size_t c = 0; c < d.size(); ++c) {
    if (d[c] >= 0.005) items.emplace_back(d[c], int(c));
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> parts;
  for (const auto& [v, c] : items) parts.push_back(absl::StrFormat("%s %.2f", Name(names, c), v));
  return absl::StrJoin(parts, ", ");
}

std::optional<Agreement> ComputeAgreement(const std::vector<AuditRecord>& records, bool baseline) {
  Agreement a;
  std::vector<double> confidence, label_prob, entropy;
  double kl_sum = 0, js_sum = 0;
  int64_t top2 = 0;
  for (const AuditRecord& r : records) {
    if (r.votes.empty()) continue;
    const std::vector<double>& predicted = baseline ? r.baseline : r.mined;
    if (predicted.empty()) continue;
    ++a.count_votes;
    entropy.push_back(Entropy(r.votes));
    const double p_label = baseline ? r.baseline[r.label] : r.label_prob;
    confidence.push_back(baseline ? p_label : r.score);
    label_prob.push_back(p_label);
    const std::vector<double> votes_off = OffLabel(r.votes, r.label);
    if (ArgMax(votes_off) < 0 || votes_off[ArgMax(votes_off)] <= 0) continue;
    ++a.count_off_label;
    const std::vector<double> predicted_off = OffLabel(predicted, r.label);
    kl_sum += KlDivergence(votes_off, predicted_off);
    js_sum += JsDivergence(votes_off, predicted_off);
    top2 += ArgMax(predicted_off) == ArgMax(votes_off);
  }
  if (a.count_votes == 0) return std::nullopt;
  if (a.count_off_label > 0) {
    a.mean_kl = kl_sum / double(a.count_off_label);
    a.mean_js = js_sum / double(a.count_off_label);
    a.top2_agreement = double(top2) / double(a.count_off_label);
  }
  a.spearman_confidence_vs_entropy = SpearmanCorrelation(confidence, entropy);
  a.spearman_label_prob_vs_entropy = SpearmanCorrelation(label_prob, entropy);
  return a;
}

std::string AgreementJson(const std::optional<Agreement>& a) {
  if (!a.has_value()) return "null";
  return absl::StrCat("{\"count_votes\": ", a->count_votes, ", \"count_off_label\": ", a->count_off_label,
                      ", \"mean_kl_votes_off_label\": ", JsonNumber(a->mean_kl),
                      ", \"mean_js_votes_off_label\": ", JsonNumber(a->mean_js),
                      ", \"top2_agreement\": ", JsonNumber(a->top2_agreement),
                      ", \"spearman_confidence_vs_vote_entropy\": ", JsonNumber(a->spearman_confidence_vs_entropy),
                      ", \"spearman_label_prob_vs_vote_entropy\": ", JsonNumber(a->spearman_label_prob_vs_entropy),
                      "}");
}

std::string AgreementLine(const std::string& who, const Agreement& a) {
  if (a.count_off_label == 0) {
    return absl::StrFormat("%-9s no sample has votes off its given label; Spearman(confidence, vote entropy) %.4f (%d "
                           "samples)\n", who, a.spearman_confidence_vs_entropy, a.count_votes);
  }
  return absl::StrFormat(
      "%-9s KL(votes_off||pred_off) %.4f  JS(votes_off, pred_off) %.4f  top-2 agreement %.4f (%d samples)  "
      "Spearman(confidence, vote entropy) %.4f  Spearman(p(label), vote entropy) %.4f (%d samples)\n",
      who, a.mean_kl, a.mean_js, a.top2_agreement, a.count_off_label, a.spearman_confidence_vs_entropy,
      a.spearman_label_prob_vs_entropy, a.count_votes);
}

}  // namespace

std::vector<double> OffLabel(const std::vector<double>& distribution, int label) {
  std::vector<double> off = distribution;
  if (label >= 0 && label < int(off.size())) off[label] = 0;
  return Normalized(off);
}

absl::StatusOr<RankBy> ParseRankBy(const std::string& name) {
  if (name == "combined") return RankBy::kCombined;
  if (name == "label_prob") return RankBy::kLabelProb;
  if (name == "score") return RankBy::kScore;
  return absl::InvalidArgumentError(absl::StrCat("--rank_by: '", name, "' is not one of combined, label_prob, score"));
}

const char* RankByFormula(RankBy rank_by) {
  switch (rank_by) {
    case RankBy::kLabelProb: return "suspicion = 1 - p_main(given label)";
    case RankBy::kScore: return "suspicion = R_class(1 - score)";
    default: return "suspicion = (1 - p_main(given label)) * (0.5 + 0.5 * R_class(1 - score))";
  }
}

std::vector<size_t> RankRecords(std::vector<AuditRecord>* records, RankBy rank_by) {
  // Normalised rank of 1 - score among the samples of the same given label.
  std::vector<double> low_score_rank(records->size(), 0.0);
  std::map<int, std::vector<size_t>> by_class;
  for (size_t i = 0; i < records->size(); ++i) by_class[(*records)[i].label].push_back(i);
  for (const auto& [label, members] : by_class) {
    std::vector<double> values;
    for (size_t i : members) values.push_back(1 - (*records)[i].score);
    const std::vector<double> ranks = NormalisedRanks(values);
    for (size_t k = 0; k < members.size(); ++k) low_score_rank[members[k]] = ranks[k];
  }
  for (size_t i = 0; i < records->size(); ++i) {
    AuditRecord& r = (*records)[i];
    const double off_label = 1 - r.label_prob;
    switch (rank_by) {
      case RankBy::kLabelProb: r.suspicion = off_label; break;
      case RankBy::kScore: r.suspicion = low_score_rank[i]; break;
      default: r.suspicion = off_label * (0.5 + 0.5 * low_score_rank[i]); break;
    }
  }
  std::vector<size_t> order(records->size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const AuditRecord &rx = (*records)[x], &ry = (*records)[y];
    if (rx.suspicion != ry.suspicion) return rx.suspicion > ry.suspicion;
    return rx.index < ry.index;
  });
  for (size_t k = 0; k < order.size(); ++k) (*records)[order[k]].rank = int64_t(k) + 1;
  return order;
}

std::optional<Agreement> DmueAgreement(const std::vector<AuditRecord>& records) {
  return ComputeAgreement(records, false);
}

std::optional<Agreement> BaselineAgreement(const std::vector<AuditRecord>& records) {
  return ComputeAgreement(records, true);
}

namespace {

// `suspicion[i]` higher = more suspicious; `predicted[i]` the model's class.
NoiseRecovery ScoreFlips(const std::vector<AuditRecord>& records, const std::vector<double>& suspicion,
                         const std::vector<int>& predicted) {
  NoiseRecovery out;
  out.count = int64_t(records.size());
  std::vector<size_t> order(records.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return suspicion[a] > suspicion[b]; });
  int64_t recovered = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].clean_label < 0) continue;
    ++out.flipped;
    recovered += predicted[i] == records[i].clean_label;
  }
  int64_t hits = 0;
  for (int64_t k = 0; k < out.flipped; ++k) hits += records[order[k]].clean_label >= 0;
  out.precision_at_flipped = out.flipped ? double(hits) / out.flipped : 0;
  out.clean_label_recovered = out.flipped ? double(recovered) / out.flipped : 0;
  // Mann-Whitney U from average ranks (ascending suspicion, ties averaged).
  std::vector<size_t> ascending(order.rbegin(), order.rend());
  double flipped_rank_sum = 0;
  for (size_t i = 0; i < ascending.size();) {
    size_t j = i;
    while (j + 1 < ascending.size() && suspicion[ascending[j + 1]] == suspicion[ascending[i]]) ++j;
    const double rank = 0.5 * double(i + j) + 1;
    for (size_t t = i; t <= j; ++t) flipped_rank_sum += records[ascending[t]].clean_label >= 0 ? rank : 0;
    i = j + 1;
  }
  const double n_flipped = double(out.flipped), n_clean = double(out.count - out.flipped);
  if (n_flipped > 0 && n_clean > 0) {
    out.roc_auc = (flipped_rank_sum - n_flipped * (n_flipped + 1) / 2) / (n_flipped * n_clean);
  }
  return out;
}

bool AnyFlipped(const std::vector<AuditRecord>& records) {
  return std::any_of(records.begin(), records.end(), [](const AuditRecord& r) { return r.clean_label >= 0; });
}

std::string NoiseJson(const std::optional<NoiseRecovery>& n) {
  if (!n.has_value()) return "null";
  return absl::StrCat("{\"count\": ", n->count, ", \"flipped\": ", n->flipped,
                      ", \"precision_at_flipped\": ", JsonNumber(n->precision_at_flipped),
                      ", \"roc_auc\": ", JsonNumber(n->roc_auc),
                      ", \"clean_label_recovered\": ", JsonNumber(n->clean_label_recovered), "}");
}

std::string NoiseLine(const std::string& who, const NoiseRecovery& n) {
  return absl::StrFormat("%-9s finds flipped labels: precision at %d %.4f, ROC AUC %.4f, clean label predicted for "
                         "%.4f of them\n",
                         who, n.flipped, n.precision_at_flipped, n.roc_auc, n.clean_label_recovered);
}

}  // namespace

std::optional<NoiseRecovery> DmueNoiseRecovery(const std::vector<AuditRecord>& records) {
  if (!AnyFlipped(records)) return std::nullopt;
  std::vector<double> suspicion;
  std::vector<int> predicted;
  for (const AuditRecord& r : records) {
    suspicion.push_back(r.suspicion);
    predicted.push_back(r.predicted);
  }
  return ScoreFlips(records, suspicion, predicted);
}

std::optional<NoiseRecovery> BaselineNoiseRecovery(const std::vector<AuditRecord>& records) {
  if (!AnyFlipped(records)) return std::nullopt;
  std::vector<double> suspicion;
  std::vector<int> predicted;
  for (const AuditRecord& r : records) {
    if (r.baseline.empty()) return std::nullopt;
    suspicion.push_back(1.0 - r.baseline[r.label]);
    predicted.push_back(int(std::max_element(r.baseline.begin(), r.baseline.end()) - r.baseline.begin()));
  }
  return ScoreFlips(records, suspicion, predicted);
}

std::string AuditCsv(const std::vector<AuditRecord>& records, const std::vector<size_t>& order,
                     const std::vector<std::string>& names) {
  const bool votes = std::any_of(records.begin(), records.end(), [](const auto& r) { return !r.votes.empty(); });
  const bool baseline =
      std::any_of(records.begin(), records.end(), [](const auto& r) { return !r.baseline.empty(); });
  const bool flips = AnyFlipped(records);
  std::string csv = "rank,key,index,given_label,given_name,suspicion,score,batch_score,p_given_label,predicted";
  if (flips) csv += ",clean_label";
  for (const std::string& n : names) absl::StrAppend(&csv, ",", CsvField("mined_" + n));
  if (votes) {
    for (const std::string& n : names) absl::StrAppend(&csv, ",", CsvField("votes_" + n));
  }
  if (baseline) {
    for (const std::string& n : names) absl::StrAppend(&csv, ",", CsvField("baseline_" + n));
  }
  csv += "\n";
  auto append = [&](const std::vector<double>& values) {
    for (size_t c = 0; c < names.size(); ++c) {
      absl::StrAppend(&csv, ",", c < values.size() ? absl::StrFormat("%.6f", values[c]) : "");
    }
  };
  for (size_t i : order) {
    const AuditRecord& r = records[i];
    absl::StrAppend(&csv, r.rank, ",", CsvField(r.key), ",", r.index, ",", r.label, ",", CsvField(Name(names, r.label)),
                    ",", absl::StrFormat("%.6f,%.6f,%.6f,%.6f", r.suspicion, r.score, r.batch_score, r.label_prob),
                    ",", r.predicted);
    if (flips) absl::StrAppend(&csv, ",", r.clean_label);
    append(r.mined);
    if (votes) append(r.votes);
    if (baseline) append(r.baseline);
    csv += "\n";
  }
  return csv;
}

std::string AuditSummaryJson(const AuditSummary& s) {
  std::vector<std::string> names;
  for (const std::string& n : s.class_names) names.push_back(JsonString(n));
  return absl::StrCat(
      "{\n  \"checkpoint\": ", JsonString(s.checkpoint), ",\n  \"model_spec\": ",
      s.model_spec.empty() ? "null" : JsonString(s.model_spec), ",\n  \"baseline_checkpoint\": ",
      JsonString(s.baseline_checkpoint), ",\n  \"data\": ", JsonString(s.data), ",\n  \"class_names\": [",
      absl::StrJoin(names, ", "), "],\n  \"temperature\": ", JsonNumber(s.temperature), ",\n  \"count\": ", s.count,
      ",\n  \"padded_samples\": ", s.padded_samples, ",\n  \"ranking\": ",
      JsonString(absl::StrCat(RankByFormula(s.rank_by),
                                 "; R_class = normalised average rank within the samples of the same given label")),
      ",\n  \"dmue\": ", AgreementJson(s.dmue), ",\n  \"baseline\": ", AgreementJson(s.baseline),
      ",\n  \"noisy_labels\": ", s.noisy_labels.empty() ? "null" : JsonString(s.noisy_labels),
      ",\n  \"dmue_noise\": ", NoiseJson(s.dmue_noise), ",\n  \"baseline_noise\": ", NoiseJson(s.baseline_noise),
      ",\n  \"seconds\": ", JsonNumber(s.seconds), ",\n  \"images_per_second\": ", JsonNumber(s.images_per_second),
      "\n}\n");
}

std::string AuditSummaryText(const AuditSummary& s) {
  std::string t = absl::StrFormat("audited %d samples of %s with %s (T = %.3g); %.1f images/s\n", s.count, s.data,
                                  s.checkpoint, s.temperature, s.images_per_second);
  if (s.dmue.has_value()) absl::StrAppend(&t, AgreementLine("DMUE", *s.dmue));
  if (s.baseline.has_value()) absl::StrAppend(&t, AgreementLine("baseline", *s.baseline));
  if (!s.dmue.has_value()) absl::StrAppend(&t, "(no vote distributions in the data: no agreement measured)\n");
  if (s.dmue_noise.has_value()) absl::StrAppend(&t, NoiseLine("DMUE", *s.dmue_noise));
  if (s.baseline_noise.has_value()) absl::StrAppend(&t, NoiseLine("baseline", *s.baseline_noise));
  return t;
}

absl::Status WriteAuditOutputs(const AuditSummary& summary, const std::vector<AuditRecord>& records,
                               const std::vector<size_t>& order, int top_k,
                               const std::function<absl::StatusOr<cv::Mat>(int64_t)>& read_image,
                               const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create output directory '", dir, "': ", ec.message()));
  const std::vector<std::string>& names = summary.class_names;
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/audit.csv", AuditCsv(records, order, names)));
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/audit_summary.json", AuditSummaryJson(summary)));

  const size_t k = std::min(order.size(), size_t(std::max(top_k, 0)));
  std::vector<SheetItem> items;
  std::vector<std::string> thumbnails;
  for (size_t i = 0; i < k; ++i) {
    const AuditRecord& r = records[order[i]];
    ASSIGN_OR_RETURN(cv::Mat image, read_image(r.index));
    SheetItem item;
    item.rgb = image;
    item.title = absl::StrCat("#", r.rank, " ", r.key);
    item.subtitle = absl::StrFormat("%s  s=%.3f p=%.2f", Name(names, r.label), r.score, r.label_prob);
    item.bars = r.mined;
    item.reference = r.votes;
    item.highlight = r.label;
    items.push_back(item);
    cv::Mat bgr, thumb;
    cv::cvtColor(image, bgr, image.channels() == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_RGB2BGR);
    const double scale = 96.0 / std::max(bgr.rows, bgr.cols);
    cv::resize(bgr, thumb, cv::Size(std::max(1, int(bgr.cols * scale)), std::max(1, int(bgr.rows * scale))), 0, 0,
               scale > 1 ? cv::INTER_NEAREST : cv::INTER_AREA);
    ASSIGN_OR_RETURN(std::string png, EncodePng(thumb));
    thumbnails.push_back(absl::Base64Escape(png));
  }
  const cv::Mat sheet =
      DrawContactSheet(items, names, 6, absl::StrCat("top ", k, " most suspicious labels (", summary.data, ")"));
  RETURN_IF_ERROR(WritePng(dir + "/audit_top.png", sheet));
  ASSIGN_OR_RETURN(std::string sheet_png, EncodePng(sheet));

  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>DMUE label audit</title>\n<style>"
      "body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}th{background:#f2f2f2}"
      "code{background:#f6f6f6;padding:1px 3px}</style></head><body>\n<h1>DMUE label audit</h1>\n<table>"
      "<tr><th>checkpoint</th><td>", Html(summary.checkpoint), "</td></tr><tr><th>data</th><td>", Html(summary.data),
      "</td></tr><tr><th>samples</th><td>", summary.count, "</td></tr><tr><th>temperature</th><td>",
      absl::StrFormat("%.3g", summary.temperature), "</td></tr><tr><th>speed</th><td>",
      absl::StrFormat("%.1f images/s", summary.images_per_second), "</td></tr>",
      summary.baseline_checkpoint.empty()
          ? ""
          : absl::StrCat("<tr><th>baseline</th><td>", Html(summary.baseline_checkpoint), "</td></tr>"),
      "</table>\n<p>Ranking: <code>", RankByFormula(summary.rank_by), "</code>; R<sub>class</sub> = normalised "
      "average rank within the samples of the same given label (the score's one-hot input adds a per-class offset); "
      "<i>score</i> is DMUE's pairwise uncertainty score computed against the class means of the whole set, "
      "<i>p_main</i> the main branch's softmax. The mined distribution is "
      "the auxiliary branch of the given label on the sample (softmax, sharpened by 1/T, renormalised, 0 at the "
      "given label), as in training. Full table: <a href=\"audit.csv\">audit.csv</a>.</p>\n");
  if (summary.dmue.has_value()) {
    absl::StrAppend(&html,
                    "<h2>Agreement with human votes</h2>\n<table><tr><th>model</th><th>samples with votes off the "
                    "label</th><th>mean KL(votes_off || pred_off)</th><th>mean JS(votes_off, pred_off)</th><th>top-2 agreement</th><th>Spearman(confidence,"
                    " vote entropy)</th><th>Spearman(p(label), vote entropy)</th></tr>\n");
    auto row = [&](const std::string& who, const Agreement& a) {
      absl::StrAppend(&html, "<tr><td>", who, "</td><td>", a.count_off_label, " / ", a.count_votes, "</td><td>",
                      absl::StrFormat("%.4f", a.mean_kl), "</td><td>", absl::StrFormat("%.4f", a.mean_js),
                      "</td><td>", absl::StrFormat("%.4f", a.top2_agreement),
                      "</td><td>", absl::StrFormat("%.4f", a.spearman_confidence_vs_entropy), "</td><td>",
                      absl::StrFormat("%.4f", a.spearman_label_prob_vs_entropy), "</td></tr>\n");
    };
    row("DMUE (mined distribution, score)", *summary.dmue);
    if (summary.baseline.has_value()) row("baseline (softmax)", *summary.baseline);
    absl::StrAppend(&html, "</table>\n");
  }
  absl::StrAppend(&html, "<h2>Top ", k, "</h2>\n<img alt=\"contact sheet\" src=\"data:image/png;base64,",
                  absl::Base64Escape(sheet_png), "\">\n<table><tr><th>rank</th><th>image</th><th>key</th><th>given</th>"
                  "<th>predicted</th><th>score</th><th>p(given)</th><th>mined distribution</th>",
                  summary.dmue.has_value() ? "<th>votes</th>" : "",
                  "</tr>\n");
  for (size_t i = 0; i < k; ++i) {
    const AuditRecord& r = records[order[i]];
    absl::StrAppend(&html, "<tr><td>", r.rank, "</td><td><img src=\"data:image/png;base64,", thumbnails[i],
                    "\"></td><td>", Html(r.key), "</td><td>", Html(Name(names, r.label)), "</td><td>",
                    Html(Name(names, r.predicted)), "</td><td>", absl::StrFormat("%.4f", r.score), "</td><td>",
                    absl::StrFormat("%.4f", r.label_prob), "</td><td>", Html(Distribution(r.mined, names)), "</td>",
                    summary.dmue.has_value() ? absl::StrCat("<td>", Html(Distribution(r.votes, names)), "</td>") : "",
                    "</tr>\n");
  }
  absl::StrAppend(&html, "</table>\n</body></html>\n");
  return WriteFileAtomically(dir + "/audit.html", html);
}

}  // namespace dmue::evaluation
