// Loader throughput (images/s) with 2 workers on LMDB data, training
// transforms, as the trainer uses it:
//   BM_Loader64:  PNG records of 64x64 synthetic faces, resize 72, crop 64, batch 64
//   BM_Loader224: raw 256x256 records (reference layout), resize 256, crop 224, batch 72
//   bazel run -c opt //datasets:loader_benchmark -- --benchmark_min_time=1
#include <filesystem>

#include <benchmark/benchmark.h>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_format.h"
#include "datasets/example_source.h"
#include "datasets/loader.h"
#include "datasets/lmdb_dataset.h"
#include "datasets/synthetic_faces.h"

namespace dmue::datasets {
namespace {

std::shared_ptr<LmdbSource> MakeDb(const std::string& name, int count, int size, ImageEncoding encoding) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("dmue_loader_bench_" + name)).string();
  std::filesystem::remove_all(dir);
  SyntheticFaceOptions options;
  options.size = size;
  SyntheticFaceGenerator generator(options, 1);
  std::vector<LabelEntry> entries;
  {
    auto writer = LmdbWriter::Open(dir, {.encoding = encoding});
    CHECK(writer.ok()) << writer.status();
    for (int i = 0; i < count; ++i) {
      SyntheticFace face = generator.Generate(i);
      LabelEntry entry{absl::StrFormat("%06d.png", i), "train", face.label, {}};
      CHECK((*writer)->Put(LmdbKey(entry), face.image).ok());
      entries.push_back(entry);
    }
    CHECK((*writer)->Finish(&entries).ok());
  }
  auto source = LmdbSource::Open(dir, entries);
  CHECK(source.ok()) << source.status();
  return *source;
}

void RunLoader(benchmark::State& state, const std::shared_ptr<LmdbSource>& source, int resize, int crop,
               int batch_size) {
  auto sampler = Sampler::Create({.kind = SamplerKind::kClassBalanced, .seed = 0}, source->Labels());
  LoaderOptions options;
  options.batch_size = batch_size;
  options.num_workers = int(state.range(0));
  options.transform = TrainTransform(resize, crop);
  auto loader = Loader::Create(source, *sampler, options);
  CHECK(loader.ok()) << loader.status();
  int64_t epoch = 0, images = 0;
  for (auto _ : state) {
    auto batch = (*loader)->Next();
    CHECK(batch.ok()) << batch.status();
    if (!batch->has_value()) {
      (*loader)->StartEpoch(++epoch);
      batch = (*loader)->Next();
    }
    images += (**batch).images.size(0);
  }
  state.counters["images/s"] = benchmark::Counter(double(images), benchmark::Counter::kIsRate);
}

void BM_Loader64(benchmark::State& state) {
  static auto* source = new std::shared_ptr<LmdbSource>(MakeDb("64", 2000, 64, ImageEncoding::kPng));
  RunLoader(state, *source, 72, 64, 64);
}
BENCHMARK(BM_Loader64)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Loader224(benchmark::State& state) {
  static auto* source = new std::shared_ptr<LmdbSource>(MakeDb("224", 600, 256, ImageEncoding::kRaw));
  RunLoader(state, *source, 256, 224, 72);
}
BENCHMARK(BM_Loader224)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dmue::datasets

BENCHMARK_MAIN();
