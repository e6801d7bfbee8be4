// MTCNN detection (and detection + crop_align) per golden photo, 2 intra-op
// threads, images already decoded, as ../shared/reference-baseline.md
// measured the reference. Run alone:
//   bazel run -c opt //preprocessing:mtcnn_benchmark
// Counters: ref_ms (the reference's median from the baseline file), speedup
// (ref_ms / our mean), and the stage split of the last run. CropAlign runs the
// second detection in a region around the expected face (the default);
// CropAlignWholeCanvas on the whole 800x800 canvas, as before (A/B in one run).
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "dmue/io/image_decode.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"
#include "third_party/shared_data.h"

namespace dmue::preprocessing {
namespace {

struct Photo {
  const char* name;
  double ref_ms;  // reference-baseline.md, "Face detection".
};

const Photo kPhotos[] = {
    {"test1.jpg", 14.5},
    {"face_sdk_test1.jpg", 59.5},
    {"face_sdk_test2.jpg", 46.2},
    {"face_sdk_test3_mask.jpg", 51.6},
    {"face_sdk_test1_cropped.jpg", 12.7},
    {"fma3d_mask-sample.jpg", 124.2},
    {"facex_sample_non_mask.jpg", 225.9},
    {"facex_arch.jpg", 396.0},
    {"fma3d_mask-data_0_noface.png", 9.3},
    {"facex_logo_noface.png", 7.2},
};

// The reference's crop_align flow on test1.jpg took 88.0 ms.
constexpr double kRefCropAlignTest1Ms = 88.0;

bool g_nchw = false;

const Mtcnn* Detector() {
  static std::unique_ptr<Mtcnn> mtcnn = [] {
    auto dir = SharedPath("models/mtcnn");
    if (!dir.ok()) {
      std::fprintf(stderr, "%s\n", std::string(dir.status().message()).c_str());
      std::exit(1);
    }
    MtcnnOptions options;
    options.channels_last = !g_nchw;
    auto m = Mtcnn::Load(*dir, options);
    if (!m.ok()) {
      std::fprintf(stderr, "%s\n", std::string(m.status().message()).c_str());
      std::exit(1);
    }
    return std::move(*m);
  }();
  return mtcnn.get();
}

cv::Mat LoadPhoto(const std::string& name) {
  auto path = SharedPath("golden/mtcnn/images/" + name);
  if (!path.ok()) return cv::Mat();
  auto rgb = io::ReadImageRgb(*path);
  return rgb.ok() ? *rgb : cv::Mat();
}

void BM_Detect(benchmark::State& state, const Photo& photo) {
  const Mtcnn* mtcnn = Detector();
  const cv::Mat rgb = LoadPhoto(photo.name);
  if (rgb.empty()) {
    state.SkipWithError("photo not found");
    return;
  }
  (void)mtcnn->Detect(rgb);  // Warm-up.
  MtcnnTrace trace;
  double total_ms = 0;
  size_t faces = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto result = mtcnn->Detect(rgb, &trace);
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
    faces = result.ok() ? result->size() : 0;
    benchmark::DoNotOptimize(result);
  }
  const double mean = total_ms / static_cast<double>(state.iterations());
  state.counters["faces"] = static_cast<double>(faces);
  state.counters["ref_ms"] = photo.ref_ms;
  state.counters["speedup"] = photo.ref_ms / mean;
  state.counters["resample_ms"] = trace.resample_ms;
  state.counters["pnet_ms"] = trace.pnet_ms;
  state.counters["rnet_ms"] = trace.rnet_ms;
  state.counters["onet_ms"] = trace.onet_ms;
}

enum class Flow { kAlign, kAlignWholeCanvas, kAlignFast, kMsra };

void BM_CropAlign(benchmark::State& state, const Photo& photo, Flow flow) {
  const Mtcnn* mtcnn = Detector();
  const cv::Mat rgb = LoadPhoto(photo.name);
  if (rgb.empty()) {
    state.SkipWithError("photo not found");
    return;
  }
  MtcnnLandmarkSource landmarks;
  AlignOptions options;
  options.second_detection_region = flow != Flow::kAlignWholeCanvas;
  if (flow == Flow::kAlignFast) options.flow = CropFlow::kFast;
  FaceAligner aligner(mtcnn, &landmarks, options);
  const bool msra = flow == Flow::kMsra;
  double total_ms = 0;
  bool ok = true;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto crop = msra ? aligner.CropMsra(rgb) : aligner.CropAlign(rgb);
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
    ok = crop.ok();
    benchmark::DoNotOptimize(crop);
  }
  if (!ok) state.SkipWithError("no face");
  const double mean = total_ms / static_cast<double>(state.iterations());
  if (flow != Flow::kMsra && flow != Flow::kAlignFast && std::string(photo.name) == "test1.jpg") {
    state.counters["ref_ms"] = kRefCropAlignTest1Ms;
    state.counters["speedup"] = kRefCropAlignTest1Ms / mean;
  }
}

}  // namespace
}  // namespace dmue::preprocessing

int main(int argc, char** argv) {
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nchw") dmue::preprocessing::g_nchw = true;  // A/B of the nets' layout.
    if (a.rfind("--threads=", 0) == 0) threads = std::stoi(a.substr(10));
  }
  at::set_num_threads(threads);
  using dmue::preprocessing::kPhotos;
  for (const auto& photo : kPhotos) {
    benchmark::RegisterBenchmark((std::string("Detect/") + photo.name).c_str(),
                                 dmue::preprocessing::BM_Detect, photo)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
  }
  using dmue::preprocessing::Flow;
  for (const auto& photo : kPhotos) {
    const std::string name = photo.name;
    if (name.find("noface") != std::string::npos) continue;
    benchmark::RegisterBenchmark(("CropAlign/" + name).c_str(), dmue::preprocessing::BM_CropAlign,
                                 photo, Flow::kAlign)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
    benchmark::RegisterBenchmark(("CropAlignFast/" + name).c_str(), dmue::preprocessing::BM_CropAlign,
                                 photo, Flow::kAlignFast)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
    benchmark::RegisterBenchmark(("CropAlignWholeCanvas/" + name).c_str(),
                                 dmue::preprocessing::BM_CropAlign, photo, Flow::kAlignWholeCanvas)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
  }
  for (const auto& photo : kPhotos) {
    const std::string name = photo.name;
    if (name.find("noface") != std::string::npos) continue;
    benchmark::RegisterBenchmark(("CropMsra/" + name).c_str(), dmue::preprocessing::BM_CropAlign,
                                 photo, Flow::kMsra)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
