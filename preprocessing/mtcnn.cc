// Mtcnn and MtcnnImpl::Detect: the detector as a pipeline of the stages of
// mtcnn_stages.h (pyramid, P-Net proposals and NMS, the refine loop for
// R-Net and O-Net, ordering and mapping back), with the trace bookkeeping.
#include "preprocessing/mtcnn.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/torch_checkpoint.h"
#include "preprocessing/mtcnn_internal.h"
#include "preprocessing/mtcnn_stages.h"

namespace dmue::preprocessing {
namespace {

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::array<float, 5> Row(const Box& b) { return {b.x1, b.y1, b.x2, b.y2, b.score}; }

void Record(const std::vector<Box>& boxes, std::vector<std::array<float, 5>>& rows) {
  for (const Box& b : boxes) rows.push_back(Row(b));
}

absl::Status CheckInput(const cv::Mat& input, const cv::Rect2d* region) {
  if (input.empty()) return absl::InvalidArgumentError("Mtcnn::Detect: empty image");
  if (region != nullptr &&
      !(std::isfinite(region->x) && std::isfinite(region->y) && std::isfinite(region->width) &&
        std::isfinite(region->height) && region->width >= 0 && region->height >= 0)) {
    return absl::InvalidArgumentError(
        "Mtcnn::DetectInRegion: the region needs finite coordinates and a size >= 0");
  }
  if (input.type() != CV_8UC3) {
    return absl::InvalidArgumentError(
        absl::StrCat("Mtcnn::Detect: expected an 8-bit 3-channel RGB image, got type ",
                     input.type(), " with ", input.channels(), " channels"));
  }
  return absl::OkStatus();
}

// `input`, area-downscaled when its longer side exceeds max_input_side (0:
// never); `scale` is the factor.
cv::Mat DetectionImage(const cv::Mat& input, int max_input_side, double* scale) {
  *scale = 1.0;
  const int longer = std::max(input.cols, input.rows);
  if (max_input_side <= 0 || longer <= max_input_side) return input;
  *scale = static_cast<double>(max_input_side) / longer;
  cv::Mat rgb;
  cv::resize(input, rgb,
             cv::Size(std::max(1, static_cast<int>(std::lround(input.cols * *scale))),
                      std::max(1, static_cast<int>(std::lround(input.rows * *scale)))),
             0, 0, cv::INTER_AREA);
  return rgb;
}

std::vector<FaceDetection> Faces(const std::vector<RefinedBox>& refined) {
  std::vector<FaceDetection> faces;
  faces.reserve(refined.size());
  for (const RefinedBox& r : refined) {
    FaceDetection f;
    f.box = {r.box.x1, r.box.y1, r.box.x2, r.box.y2};
    f.prob = r.box.score;
    f.landmarks = r.landmarks;
    faces.push_back(f);
  }
  return faces;
}

// R-Net and O-Net as the refine loop calls them, on the layout the options ask for.
RefineNet RnetOf(const MtcnnImpl& nets) {
  return [&nets](const at::Tensor& crops) {
    auto [reg, prob] = nets.Rnet(nets.options().channels_last ? crops : crops.contiguous());
    return RefineNetOutput{reg, prob, at::Tensor()};
  };
}

RefineNet OnetOf(const MtcnnImpl& nets) {
  return [&nets](const at::Tensor& crops) {
    auto [reg, landmarks, prob] =
        nets.Onet(nets.options().channels_last ? crops : crops.contiguous());
    return RefineNetOutput{reg, prob, landmarks};
  };
}

// The searched levels in `threads` groups of about equal P-Net work (the
// area P-Net runs on), largest first onto the least loaded group. Small
// levels gain little from splitting one convolution over threads (each call
// has a fixed cost of the order of the work), while the levels together
// split well: the largest is about half of all.
std::vector<std::vector<int>> LevelGroups(const std::vector<PnetPlacement>& placements,
                                          int threads) {
  std::vector<int> order;
  for (size_t k = 0; k < placements.size(); ++k) {
    if (!placements[k].searched.empty()) order.push_back(static_cast<int>(k));
  }
  auto area = [&](int k) {
    const LevelWindow& r = placements[k].run;
    return static_cast<int64_t>(r.row1 - r.row0) * (r.col1 - r.col0);
  };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return area(a) > area(b); });
  const size_t n = std::min<size_t>(std::max(threads, 1), std::max<size_t>(order.size(), 1));
  std::vector<std::vector<int>> groups(n);
  std::vector<int64_t> load(n, 0);
  for (int k : order) {
    const size_t g = std::min_element(load.begin(), load.end()) - load.begin();
    groups[g].push_back(k);
    load[g] += area(k);
  }
  return groups;
}

// Adds what ProposeOnLevel recorded for one level to the detection's trace.
void MergeLevelTrace(const MtcnnTrace& level, MtcnnTrace& tr) {
  tr.resample_ms += level.resample_ms;
  tr.pnet_ms += level.pnet_ms;
  tr.counts.pnet_candidates_over_threshold += level.counts.pnet_candidates_over_threshold;
  tr.stage1_candidates.insert(tr.stage1_candidates.end(), level.stage1_candidates.begin(),
                              level.stage1_candidates.end());
  tr.stage1_candidate_scale_index.insert(tr.stage1_candidate_scale_index.end(),
                                         level.stage1_candidate_scale_index.begin(),
                                         level.stage1_candidate_scale_index.end());
}

}  // namespace

bool MtcnnStageCounts::operator==(const MtcnnStageCounts& o) const {
  auto tie = [](const MtcnnStageCounts& c) {
    return std::tie(c.num_scales, c.pnet_candidates_over_threshold, c.after_per_scale_nms,
                    c.after_pnet_nms, c.rnet_inputs, c.rnet_over_threshold, c.after_rnet_nms,
                    c.onet_inputs, c.onet_over_threshold, c.after_onet_nms);
  };
  return tie(*this) == tie(o);
}

std::vector<double> PyramidScales(int64_t height, int64_t width, double min_face_size,
                                  double factor) {
  const double m = 12.0 / min_face_size;
  double minl = static_cast<double>(std::min(height, width)) * m;
  double scale = m;
  std::vector<double> scales;
  while (minl >= 12) {
    scales.push_back(scale);
    scale = scale * factor;
    minl = minl * factor;
  }
  return scales;
}

PnetPlacement MtcnnImpl::PlaceOnLevel(int rows, int cols, const PyramidLevel& level,
                                      const cv::Rect2d* region) const {
  PnetPlacement p;
  p.level_rows = level.rows;
  p.level_cols = level.cols;
  p.searched = LevelWindow{0, level.rows, 0, level.cols};
  if (region != nullptr) p.searched = PnetLevelWindow(rows, cols, level.rows, level.cols, *region);
  p.run = p.searched;
  const int run_rows = p.run.row1 - p.run.row0, run_cols = p.run.col1 - p.run.col0;
  if (!p.searched.empty() && (run_rows < level.rows || run_cols < level.cols) &&
      !PnetWindowIsExact(run_rows, run_cols, level.rows, level.cols)) {
    p.run = LevelWindow{0, level.rows, 0, level.cols};
  }
  return p;
}

std::vector<Proposal> MtcnnImpl::ProposeOnLevel(const cv::Mat& rgb, int level_index,
                                                const PyramidLevel& level,
                                                const PnetPlacement& placement, MtcnnTrace& tr,
                                                bool record) const {
  const LevelWindow& run = placement.run;
  auto t0 = std::chrono::steady_clock::now();
  at::Tensor input = ChannelsLastBuffer(1, run.row1 - run.row0, run.col1 - run.col0);
  AreaResampleWindowNormalized(rgb, 0, rgb.rows, 0, rgb.cols, level.rows, level.cols, run.row0,
                               run.row1, run.col0, run.col1, input.data_ptr<float>());
  tr.resample_ms += MsSince(t0);
  t0 = std::chrono::steady_clock::now();
  auto [reg, prob] = PnetOnWindow(options_.channels_last ? input : input.contiguous(), run,
                                  level.rows, level.cols);
  const std::vector<Proposal> proposals =
      PnetProposals(prob.select(0, 0).select(0, 1).contiguous(), reg.select(0, 0).contiguous(),
                    level.scale, options_.thresholds[0], placement);
  if (record) {
    for (const Proposal& q : proposals) {
      const Box& b = q.box;
      tr.stage1_candidates.push_back(
          {b.x1, b.y1, b.x2, b.y2, b.score, q.reg[0], q.reg[1], q.reg[2], q.reg[3]});
      tr.stage1_candidate_scale_index.push_back(level_index);
    }
  }
  tr.counts.pnet_candidates_over_threshold += static_cast<int64_t>(proposals.size());
  std::vector<Proposal> kept = Pick(proposals, NmsTorchvision(BoxesOf(proposals), 0.5));
  tr.pnet_ms += MsSince(t0);
  return kept;
}

std::vector<Proposal> MtcnnImpl::Propose(const cv::Mat& rgb,
                                         const std::vector<PyramidLevel>& levels,
                                         const cv::Rect2d* region, MtcnnTrace& tr,
                                         bool record) const {
  std::vector<PnetPlacement> placements;
  for (const PyramidLevel& level : levels) {
    tr.pyramid_hw.push_back({level.rows, level.cols});
    placements.push_back(PlaceOnLevel(rgb.rows, rgb.cols, level, region));
    const LevelWindow& s = placements.back().searched;
    tr.pnet_windows.push_back({s.row0, s.row1, s.col0, s.col1});
  }
  // Each level into its own trace, merged below in level order, so that the
  // proposals and records come out as a serial loop makes them.
  std::vector<MtcnnTrace> level_traces(levels.size());
  std::vector<std::vector<Proposal>> level_proposals(levels.size());
  const std::vector<std::vector<int>> groups = LevelGroups(placements, at::get_num_threads());
  at::parallel_for(0, static_cast<int64_t>(groups.size()), 1, [&](int64_t g0, int64_t g1) {
    c10::InferenceMode guard;  // Thread-local: the caller's does not reach pool threads.
    for (int64_t g = g0; g < g1; ++g) {
      for (int k : groups[g]) {
        level_proposals[k] =
            ProposeOnLevel(rgb, k, levels[k], placements[k], level_traces[k], record);
      }
    }
  });
  std::vector<Proposal> proposals;
  for (size_t k = 0; k < levels.size(); ++k) {
    MergeLevelTrace(level_traces[k], tr);
    proposals.insert(proposals.end(), level_proposals[k].begin(), level_proposals[k].end());
  }
  const auto t0 = std::chrono::steady_clock::now();
  tr.counts.after_per_scale_nms = static_cast<int64_t>(proposals.size());
  proposals = Pick(proposals, NmsTorchvision(BoxesOf(proposals), 0.7));
  tr.counts.after_pnet_nms = static_cast<int64_t>(proposals.size());
  tr.pnet_ms += MsSince(t0);
  return proposals;
}

absl::StatusOr<std::vector<FaceDetection>> MtcnnImpl::Detect(const cv::Mat& input,
                                                             const cv::Rect2d* region_in,
                                                             MtcnnTrace* trace) const {
  RETURN_IF_ERROR(CheckInput(input, region_in));
  c10::InferenceMode guard;
  MtcnnTrace local_trace;
  MtcnnTrace& tr = trace ? *trace : local_trace;
  tr = MtcnnTrace();
  const bool record = trace != nullptr;
  const cv::Mat rgb = DetectionImage(input, options_.max_input_side, &tr.input_scale);
  // The region in the coordinates of `rgb`.
  const double s = tr.input_scale;
  cv::Rect2d region;
  if (region_in != nullptr) {
    region =
        cv::Rect2d(region_in->x * s, region_in->y * s, region_in->width * s, region_in->height * s);
  }

  const std::vector<PyramidLevel> levels =
      PyramidLevels(rgb.rows, rgb.cols, options_.min_face_size, options_.factor);
  for (const PyramidLevel& level : levels) tr.scales.push_back(level.scale);
  tr.counts.num_scales = static_cast<int64_t>(levels.size());
  if (levels.empty()) {
    if (!options_.compat) return std::vector<FaceDetection>();
    return absl::FailedPreconditionError(absl::StrCat(
        "image ", rgb.cols, "x", rgb.rows, " is smaller than min_face_size ",
        options_.min_face_size, " (the reference crashes here: torch.cat of no pyramid levels)"));
  }

  // Stage 1: P-Net over the pyramid.
  const std::vector<Proposal> proposals =
      Propose(rgb, levels, region_in != nullptr ? &region : nullptr, tr, record);
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<Box> stage1 = RegressProposals(proposals);
  if (record) Record(stage1, tr.stage1_boxes);
  tr.pnet_ms += MsSince(t0);

  // Stage 2: R-Net.
  t0 = std::chrono::steady_clock::now();
  RefineCounts counts;
  ASSIGN_OR_RETURN(const std::vector<RefinedBox> stage2,
                   Refine(rgb, stage1, RnetStage(options_), RnetOf(*this), &counts));
  tr.counts.rnet_inputs = counts.inputs;
  tr.counts.rnet_over_threshold = counts.over_threshold;
  tr.counts.after_rnet_nms = counts.after_nms;
  const std::vector<Box> stage2_boxes = BoxesOf(stage2);
  if (record) Record(stage2_boxes, tr.stage2_boxes);
  tr.rnet_ms = MsSince(t0);

  // Stage 3: O-Net, landmarks, Min-NMS.
  t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const std::vector<RefinedBox> stage3,
                   Refine(rgb, stage2_boxes, OnetStage(options_), OnetOf(*this), &counts));
  tr.counts.onet_inputs = counts.inputs;
  tr.counts.onet_over_threshold = counts.over_threshold;
  tr.counts.after_onet_nms = counts.after_nms;
  tr.onet_ms = MsSince(t0);
  if (record) Record(BoxesOf(stage3), tr.final_boxes);

  std::vector<FaceDetection> faces = OrderFaces(Faces(stage3), options_.order);
  MapToInput(input.cols, input.rows, rgb.cols, rgb.rows, faces);
  return faces;
}

Mtcnn::Mtcnn(std::unique_ptr<MtcnnImpl> impl) : impl_(std::move(impl)) {}
Mtcnn::~Mtcnn() = default;

const MtcnnOptions& Mtcnn::options() const { return impl_->options(); }

absl::StatusOr<std::unique_ptr<Mtcnn>> Mtcnn::Load(const std::string& model_dir,
                                                   const MtcnnOptions& options) {
  NetWeights nets[3];
  const char* names[3] = {"pnet.pt", "rnet.pt", "onet.pt"};
  for (int i = 0; i < 3; ++i) {
    const std::string path = absl::StrCat(model_dir, "/", names[i]);
    ASSIGN_OR_RETURN(io::StateDict sd, io::ReadStateDict(path));
    for (auto& [k, v] : sd) nets[i][k] = v;
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<MtcnnImpl> impl,
      WithContext(MtcnnImpl::Create(std::move(nets[0]), std::move(nets[1]), std::move(nets[2]), options), model_dir));
  return std::unique_ptr<Mtcnn>(new Mtcnn(std::move(impl)));
}

absl::StatusOr<std::vector<FaceDetection>> Mtcnn::Detect(const cv::Mat& rgb,
                                                         MtcnnTrace* trace) const {
  return impl_->Detect(rgb, nullptr, trace);
}

absl::StatusOr<std::vector<FaceDetection>> Mtcnn::DetectInRegion(const cv::Mat& rgb,
                                                                 const cv::Rect2d& region,
                                                                 MtcnnTrace* trace) const {
  return impl_->Detect(rgb, &region, trace);
}

}  // namespace dmue::preprocessing
