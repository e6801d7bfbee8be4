// Mtcnn and MtcnnImpl::Detect: the detector as a pipeline of the stages of
// mtcnn_stages.h (pyramid, P-Net proposals and NMS, the refine loop for
// R-Net and O-Net, ordering and mapping back), with the trace bookkeeping.
#include "preprocessing/mtcnn.h"

#include <ATen/ATen.h>
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
  std::vector<Proposal> proposals;
  for (size_t k = 0; k < levels.size(); ++k) {
    tr.pyramid_hw.push_back({levels[k].rows, levels[k].cols});
    const PnetPlacement placement = PlaceOnLevel(rgb.rows, rgb.cols, levels[k], region);
    const LevelWindow& s = placement.searched;
    tr.pnet_windows.push_back({s.row0, s.row1, s.col0, s.col1});
    if (s.empty()) continue;
    for (Proposal& q : ProposeOnLevel(rgb, static_cast<int>(k), levels[k], placement, tr, record)) {
      proposals.push_back(q);
    }
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
