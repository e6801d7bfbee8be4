// The stages of MTCNN detection; see mtcnn_stages.h.
//
// Arithmetic here mirrors the reference's float32 tensor ops one rounding at
// a time; the file is compiled with -ffp-contract=off so that no multiply-add
// is fused.
#include "preprocessing/mtcnn_stages.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"

namespace dmue::preprocessing {
namespace {

bool NpLess(float a, float b) { return a < b || (b != b && a == a); }

// numpy's sift-down on the 1-based heap a[1..n]: moves `tmp` down from slot
// i while a child orders after it, then stores it.
void NpSiftDown(const float* v, int64_t* a, int64_t i, int64_t n, int64_t tmp) {
  for (int64_t j = i << 1; j <= n;) {
    if (j < n && NpLess(v[a[j]], v[a[j + 1]])) j += 1;
    if (!NpLess(v[tmp], v[a[j]])) break;
    a[i] = a[j];
    i = j;
    j += j;
  }
  a[i] = tmp;
}

void NpHeapsort(const float* v, int64_t* tosort, int64_t n) {
  int64_t* a = tosort - 1;  // 1-based.
  for (int64_t l = n >> 1; l > 0; --l) NpSiftDown(v, a, l, n, a[l]);
  for (; n > 1;) {
    const int64_t tmp = a[n];
    a[n] = a[1];
    n -= 1;
    NpSiftDown(v, a, 1, n, tmp);
  }
}

}  // namespace

std::vector<PyramidLevel> PyramidLevels(int rows, int cols, double min_face_size, double factor) {
  std::vector<PyramidLevel> levels;
  for (double s : PyramidScales(rows, cols, min_face_size, factor)) {
    levels.push_back({s, static_cast<int>(rows * s + 1), static_cast<int>(cols * s + 1)});
  }
  return levels;
}

std::vector<Proposal> PnetProposals(const at::Tensor& prob, const at::Tensor& reg, double scale,
                                    float threshold, const PnetPlacement& placement) {
  const LevelWindow& keep = placement.searched;
  const int64_t cell_r0 = placement.run.row0 / 2, cell_c0 = placement.run.col0 / 2;
  // Cell (row or column) i of the level is searched when its 12-pixel window
  // starts inside `keep` and ends inside (or `keep` runs to the level's end).
  auto searched = [](int64_t i, int b, int e, int size) {
    return 2 * i >= b && (e == size || 2 * i + 12 <= e);
  };
  const int64_t oh = prob.size(0), ow = prob.size(1);
  const float* pp = prob.data_ptr<float>();
  const float* rp = reg.data_ptr<float>();
  const int64_t plane = oh * ow;
  const float sf = static_cast<float>(scale);
  std::vector<Proposal> proposals;
  for (int64_t r = 0; r < oh; ++r) {
    for (int64_t c = 0; c < ow; ++c) {
      const float p = pp[r * ow + c];
      if (!(p >= threshold)) continue;
      if (!searched(r + cell_r0, keep.row0, keep.row1, placement.level_rows) ||
          !searched(c + cell_c0, keep.col0, keep.col1, placement.level_cols)) {
        continue;
      }
      const float bx = static_cast<float>(c + cell_c0), by = static_cast<float>(r + cell_r0);
      Proposal q;
      q.box.x1 = std::floor((2.0f * bx + 1.0f) / sf);
      q.box.y1 = std::floor((2.0f * by + 1.0f) / sf);
      q.box.x2 = std::floor((2.0f * bx + 12.0f) / sf);
      q.box.y2 = std::floor((2.0f * by + 12.0f) / sf);
      q.box.score = p;
      for (int k = 0; k < 4; ++k) q.reg[k] = rp[k * plane + r * ow + c];
      proposals.push_back(q);
    }
  }
  return proposals;
}

std::vector<Box> RegressProposals(const std::vector<Proposal>& proposals) {
  std::vector<Box> boxes;
  boxes.reserve(proposals.size());
  for (const Proposal& q : proposals) {
    const Box& b = q.box;
    const float regw = b.x2 - b.x1;
    const float regh = b.y2 - b.y1;
    Box r{b.x1 + q.reg[0] * regw, b.y1 + q.reg[1] * regh, b.x2 + q.reg[2] * regw,
          b.y2 + q.reg[3] * regh, b.score};
    Square(r);
    boxes.push_back(r);
  }
  return boxes;
}

std::vector<int> NmsTorchvision(const std::vector<Box>& b, double threshold) {
  const int n = static_cast<int>(b.size());
  std::vector<float> areas(n);
  for (int i = 0; i < n; ++i) areas[i] = (b[i].x2 - b[i].x1) * (b[i].y2 - b[i].y1);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int c) { return b[a].score > b[c].score; });
  std::vector<char> suppressed(n, 0);
  std::vector<int> keep;
  for (int oi = 0; oi < n; ++oi) {
    const int i = order[oi];
    if (suppressed[i]) continue;
    keep.push_back(i);
    const Box& bi = b[i];
    const float iarea = areas[i];
    for (int oj = oi + 1; oj < n; ++oj) {
      const int j = order[oj];
      if (suppressed[j]) continue;
      const float xx1 = std::max(bi.x1, b[j].x1);
      const float yy1 = std::max(bi.y1, b[j].y1);
      const float xx2 = std::min(bi.x2, b[j].x2);
      const float yy2 = std::min(bi.y2, b[j].y2);
      const float w = std::max(0.0f, xx2 - xx1);
      const float h = std::max(0.0f, yy2 - yy1);
      const float inter = w * h;
      const float ovr = inter / (iarea + areas[j] - inter);
      if (static_cast<double>(ovr) > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

std::vector<int64_t> NpArgsort(const std::vector<float>& keys) {
  const int64_t num = static_cast<int64_t>(keys.size());
  std::vector<int64_t> idx(num);
  std::iota(idx.begin(), idx.end(), 0);
  if (num < 2) return idx;
  const float* v = keys.data();
  int64_t* pl = idx.data();
  int64_t* pr = pl + num - 1;
  std::vector<int64_t*> stack;
  std::vector<int> depth;
  int msb = 0;
  for (uint64_t u = static_cast<uint64_t>(num); u > 1; u >>= 1) ++msb;
  int cdepth = msb * 2;
  constexpr int64_t kSmall = 16;
  for (;;) {
    if (cdepth < 0) {
      NpHeapsort(v, pl, pr - pl + 1);
    } else {
      while ((pr - pl) > kSmall) {
        int64_t* pm = pl + ((pr - pl) >> 1);
        if (NpLess(v[*pm], v[*pl])) std::swap(*pm, *pl);
        if (NpLess(v[*pr], v[*pm])) std::swap(*pr, *pm);
        if (NpLess(v[*pm], v[*pl])) std::swap(*pm, *pl);
        const float vp = v[*pm];
        int64_t* pi = pl;
        int64_t* pj = pr - 1;
        std::swap(*pm, *pj);
        for (;;) {
          do ++pi; while (NpLess(v[*pi], vp));
          do --pj; while (NpLess(vp, v[*pj]));
          if (pi >= pj) break;
          std::swap(*pi, *pj);
        }
        int64_t* pk = pr - 1;
        std::swap(*pi, *pk);
        if (pi - pl < pr - pi) {
          stack.push_back(pi + 1);
          stack.push_back(pr);
          pr = pi - 1;
        } else {
          stack.push_back(pl);
          stack.push_back(pi - 1);
          pl = pi + 1;
        }
        depth.push_back(--cdepth);
      }
      for (int64_t* pi = pl + 1; pi <= pr; ++pi) {
        const int64_t vi = *pi;
        const float vp = v[vi];
        int64_t* pj = pi;
        int64_t* pk = pi - 1;
        while (pj > pl && NpLess(vp, v[*pk])) *pj-- = *pk--;
        *pj = vi;
      }
    }
    if (stack.empty()) break;
    pr = stack.back();
    stack.pop_back();
    pl = stack.back();
    stack.pop_back();
    cdepth = depth.back();
    depth.pop_back();
  }
  return idx;
}

std::vector<int> NmsNumpyMin(const std::vector<Box>& b, float threshold) {
  const int n = static_cast<int>(b.size());
  std::vector<float> area(n), scores(n);
  for (int i = 0; i < n; ++i) {
    area[i] = ((b[i].x2 - b[i].x1) + 1.0f) * ((b[i].y2 - b[i].y1) + 1.0f);
    scores[i] = b[i].score;
  }
  const std::vector<int64_t> sorted = NpArgsort(scores);
  std::vector<int> order(sorted.begin(), sorted.end());
  std::vector<int> pick;
  while (!order.empty()) {
    const int i = order.back();
    pick.push_back(i);
    std::vector<int> rest;
    rest.reserve(order.size());
    for (size_t t = 0; t + 1 < order.size(); ++t) {
      const int j = order[t];
      const float xx1 = std::max(b[i].x1, b[j].x1);
      const float yy1 = std::max(b[i].y1, b[j].y1);
      const float xx2 = std::min(b[i].x2, b[j].x2);
      const float yy2 = std::min(b[i].y2, b[j].y2);
      const float w = std::max(0.0f, (xx2 - xx1) + 1.0f);
      const float h = std::max(0.0f, (yy2 - yy1) + 1.0f);
      const float inter = w * h;
      const float o = inter / std::min(area[i], area[j]);
      if (o <= threshold) rest.push_back(j);
    }
    order = std::move(rest);
  }
  return pick;
}

namespace {

RefineStage StageOf(const MtcnnOptions& options, const char* name) {
  RefineStage stage;
  stage.name = name;
  stage.compat = options.compat;
  stage.batch_size = options.batch_size;
  stage.nms_threshold = 0.7;
  return stage;
}

}  // namespace

RefineStage RnetStage(const MtcnnOptions& options) {
  RefineStage stage = StageOf(options, "R-Net");
  stage.crop_size = 24;
  stage.threshold = options.thresholds[1];
  stage.nms = NmsMethod::kTorchvisionIou;
  stage.nms_on_regressed = false;
  stage.square = true;
  return stage;
}

RefineStage OnetStage(const MtcnnOptions& options) {
  RefineStage stage = StageOf(options, "O-Net");
  stage.crop_size = 48;
  stage.threshold = options.thresholds[2];
  stage.nms = NmsMethod::kNumpyMin;
  stage.nms_on_regressed = true;
  stage.square = false;
  return stage;
}

namespace {

// The boxes of a stage that have a crop, and their crops.
struct Crops {
  std::vector<Box> boxes;
  std::vector<CropRect> rects;
};

absl::StatusOr<Crops> CropsOf(const std::vector<Box>& boxes, int width, int height,
                              const RefineStage& stage) {
  Crops crops;
  for (const Box& b : boxes) {
    const CropRect r = CropRectOf(b, width, height);
    if (r.empty()) {
      if (!stage.compat) continue;
      return absl::FailedPreconditionError(
          absl::StrCat(stage.name, ": candidate box [", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2,
                       "] lies outside the ", width, "x", height,
                       " image (the reference misaligns boxes and crops here and crashes)"));
    }
    crops.boxes.push_back(b);
    crops.rects.push_back(r);
  }
  return crops;
}

// The crops boxes[begin, end) that pass the stage's threshold, as the net
// judged them (`judged`: the box with the stage's score) and refined
// (`refined`: landmarks decoded from the judged box, then regressed).
void KeepPassing(const std::vector<Box>& boxes, size_t begin, size_t end,
                 const RefineNetOutput& out, float threshold, std::vector<Box>& judged,
                 std::vector<RefinedBox>& refined) {
  const at::Tensor reg = out.reg.contiguous(), prob = out.prob.contiguous();
  const at::Tensor landmarks = out.landmarks.defined() ? out.landmarks.contiguous() : at::Tensor();
  const float* rp = reg.data_ptr<float>();
  const float* pp = prob.data_ptr<float>();
  const float* lp = landmarks.defined() ? landmarks.data_ptr<float>() : nullptr;
  for (size_t k = begin; k < end; ++k) {
    const size_t i = k - begin;
    const float score = pp[i * 2 + 1];
    if (!(score > threshold)) continue;
    Box b = boxes[k];
    b.score = score;
    judged.push_back(b);
    RefinedBox r;
    r.box = b;
    if (lp != nullptr) r.landmarks = LandmarksInImage(b, lp + i * 10);
    Bbreg(r.box, rp + i * 4);
    refined.push_back(r);
  }
}

}  // namespace

absl::StatusOr<std::vector<RefinedBox>> Refine(const cv::Mat& rgb, const std::vector<Box>& boxes,
                                               const RefineStage& stage, const RefineNet& net,
                                               RefineCounts* counts) {
  ASSIGN_OR_RETURN(const Crops crops, CropsOf(boxes, rgb.cols, rgb.rows, stage));
  const size_t n = crops.rects.size();
  std::vector<Box> judged;
  std::vector<RefinedBox> refined;
  for (size_t b0 = 0; b0 < n; b0 += stage.batch_size) {
    const size_t b1 = std::min(n, b0 + static_cast<size_t>(stage.batch_size));
    const RefineNetOutput out = net(CropBatch(rgb, crops.rects, b0, b1, stage.crop_size));
    KeepPassing(crops.boxes, b0, b1, out, stage.threshold, judged, refined);
  }
  const std::vector<Box> compared = stage.nms_on_regressed ? BoxesOf(refined) : judged;
  const std::vector<int> keep =
      stage.nms == NmsMethod::kTorchvisionIou
          ? NmsTorchvision(compared, stage.nms_threshold)
          : NmsNumpyMin(compared, static_cast<float>(stage.nms_threshold));
  std::vector<RefinedBox> kept = Pick(refined, keep);
  if (stage.square) {
    for (RefinedBox& r : kept) Square(r.box);
  }
  if (counts != nullptr) {
    *counts = {static_cast<int64_t>(n), static_cast<int64_t>(refined.size()),
               static_cast<int64_t>(kept.size())};
  }
  return kept;
}

void Square(Box& b) {
  const float h = b.y2 - b.y1;
  const float w = b.x2 - b.x1;
  const float l = std::max(w, h);
  b.x1 = (b.x1 + w * 0.5f) - l * 0.5f;
  b.y1 = (b.y1 + h * 0.5f) - l * 0.5f;
  b.x2 = b.x1 + l;
  b.y2 = b.y1 + l;
}

void Bbreg(Box& b, const float* reg) {
  const float w = (b.x2 - b.x1) + 1.0f;
  const float h = (b.y2 - b.y1) + 1.0f;
  const float b1 = b.x1 + reg[0] * w;
  const float b2 = b.y1 + reg[1] * h;
  const float b3 = b.x2 + reg[2] * w;
  const float b4 = b.y2 + reg[3] * h;
  b.x1 = b1;
  b.y1 = b2;
  b.x2 = b3;
  b.y2 = b4;
}

CropRect CropRectOf(const Box& b, int width, int height) {
  CropRect r;
  r.x = static_cast<int>(std::trunc(b.x1));
  r.y = static_cast<int>(std::trunc(b.y1));
  r.ex = static_cast<int>(std::trunc(b.x2));
  r.ey = static_cast<int>(std::trunc(b.y2));
  if (r.x < 1) r.x = 1;
  if (r.y < 1) r.y = 1;
  if (r.ex > width) r.ex = width;
  if (r.ey > height) r.ey = height;
  return r;
}

std::array<std::array<float, 2>, 5> LandmarksInImage(const Box& b, const float* relative) {
  const float wi = (b.x2 - b.x1) + 1.0f;
  const float hi = (b.y2 - b.y1) + 1.0f;
  std::array<std::array<float, 2>, 5> points;
  for (int k = 0; k < 5; ++k) {
    points[k] = {(wi * relative[k] + b.x1) - 1.0f, (hi * relative[5 + k] + b.y1) - 1.0f};
  }
  return points;
}

std::vector<FaceDetection> OrderFaces(std::vector<FaceDetection> faces, FaceOrder order) {
  std::vector<size_t> idx;
  idx.reserve(faces.size());
  if (order == FaceOrder::kLargestFirst) {
    std::vector<float> area(faces.size());
    for (size_t i = 0; i < faces.size(); ++i) area[i] = faces[i].Area();
    const std::vector<int64_t> ascending = NpArgsort(area);
    idx.assign(ascending.rbegin(), ascending.rend());
  } else {
    idx.resize(faces.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      if (faces[a].prob != faces[b].prob) return faces[a].prob > faces[b].prob;
      return faces[a].Area() > faces[b].Area();
    });
  }
  std::vector<FaceDetection> ordered;
  ordered.reserve(faces.size());
  for (size_t i : idx) ordered.push_back(std::move(faces[i]));
  return ordered;
}

void MapToInput(int cols, int rows, int det_cols, int det_rows, std::vector<FaceDetection>& faces) {
  if (cols == det_cols && rows == det_rows) return;
  // Boxes are 1-based indices, landmarks 0-based.
  const double inv_x = static_cast<double>(cols) / det_cols;
  const double inv_y = static_cast<double>(rows) / det_rows;
  for (FaceDetection& f : faces) {
    f.box[0] = static_cast<float>((f.box[0] - 0.5) * inv_x + 0.5);
    f.box[1] = static_cast<float>((f.box[1] - 0.5) * inv_y + 0.5);
    f.box[2] = static_cast<float>((f.box[2] - 0.5) * inv_x + 0.5);
    f.box[3] = static_cast<float>((f.box[3] - 0.5) * inv_y + 0.5);
    for (auto& p : f.landmarks) {
      p[0] = static_cast<float>((p[0] + 0.5) * inv_x - 0.5);
      p[1] = static_cast<float>((p[1] + 0.5) * inv_y - 0.5);
    }
  }
}

}  // namespace dmue::preprocessing
