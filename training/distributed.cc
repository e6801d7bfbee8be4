#include "training/distributed.h"

#include <cstdlib>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dmue::training {
namespace {

absl::Status ReadInt(const char* name, int* value) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return absl::OkStatus();
  if (!absl::SimpleAtoi(text, value)) {
    return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, "='", text,
                                                   "' is not an integer"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment() {
  DistributedEnv env;
  for (auto [name, field] : {std::pair<const char*, int*>{"RANK", &env.rank},
                             {"WORLD_SIZE", &env.world_size},
                             {"LOCAL_RANK", &env.local_rank},
                             {"MASTER_PORT", &env.master_port}}) {
    if (absl::Status s = ReadInt(name, field); !s.ok()) return s;
  }
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  if (env.world_size < 1) return absl::InvalidArgumentError("WORLD_SIZE must be >= 1");
  if (env.rank < 0 || env.rank >= env.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK=", env.rank, " is outside [0, WORLD_SIZE=", env.world_size, ")"));
  }
  if (env.master_port <= 0 || env.master_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("MASTER_PORT=", env.master_port, " is not a port"));
  }
  return env;
}

DistributedContext::DistributedContext(DistributedEnv env, c10::intrusive_ptr<c10d::Store> store,
                                       c10::intrusive_ptr<c10d::ProcessGroupGloo> group)
    : env_(std::move(env)), store_(std::move(store)), group_(std::move(group)) {}

DistributedContext::~DistributedContext() = default;

absl::StatusOr<std::unique_ptr<DistributedContext>> DistributedContext::Create(
    const DistributedEnv& env, std::chrono::milliseconds timeout) {
  try {
    c10::intrusive_ptr<c10d::Store> store;
    if (!env.file_store_path.empty()) {
      store = c10::make_intrusive<c10d::FileStore>(env.file_store_path, env.world_size);
    } else {
      c10d::TCPStoreOptions options;
      options.port = static_cast<uint16_t>(env.master_port);
      options.isServer = env.rank == 0;
      options.numWorkers = env.world_size;
      options.timeout = timeout;
      store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    }
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
        env.file_store_path.empty() ? env.master_addr : "127.0.0.1"));
    options->threads = 1;
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
    return std::unique_ptr<DistributedContext>(new DistributedContext(env, store, group));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot join the process group (rank ", env.rank, " of ",
                                               env.world_size, " at ", env.master_addr, ":", env.master_port,
                                               "): ", e.what()));
  }
}

bool DistributedContext::AllTrue(bool flag) {
  std::vector<at::Tensor> t = {at::full({1}, flag ? 1 : 0, at::kInt)};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MIN;
  group_->allreduce(t, options)->wait();
  return t[0].item<int>() == 1;
}

double DistributedContext::SumAll(double value) {
  std::vector<at::Tensor> t = {at::full({1}, value, at::kDouble)};
  group_->allreduce(t)->wait();
  return t[0].item<double>();
}

void DistributedContext::AverageGradients(const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (world_size() == 1) return;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  // Buckets of consecutive same-dtype gradients, flattened, reduced
  // concurrently (one async allreduce each), then copied back.
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t bytes = 0;
  for (const at::Tensor& g : grads) {
    if (buckets.empty() || bytes >= bucket_bytes || buckets.back().front().scalar_type() != g.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += g.numel() * g.element_size();
  }
  std::vector<std::vector<at::Tensor>> flat(buckets.size());
  std::vector<c10::intrusive_ptr<c10d::Work>> work;
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<at::Tensor> pieces;
    for (const at::Tensor& g : buckets[b]) pieces.push_back(g.reshape({-1}));
    flat[b] = {at::cat(pieces)};
    work.push_back(group_->allreduce(flat[b]));
  }
  const double scale = 1.0 / world_size();
  for (size_t b = 0; b < buckets.size(); ++b) {
    work[b]->wait();
    flat[b][0].mul_(scale);
    int64_t offset = 0;
    for (const at::Tensor& g : buckets[b]) {
      at::Tensor source = flat[b][0].narrow(0, offset, g.numel()).view(g.sizes());
      const_cast<at::Tensor&>(g).copy_(source);
      offset += g.numel();
    }
  }
}

void DistributedContext::BroadcastFromMain(const std::vector<at::Tensor>& tensors) {
  if (world_size() == 1) return;
  for (const at::Tensor& t : tensors) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> buffer = {t.contiguous()};
    group_->broadcast(buffer)->wait();
    if (!buffer[0].is_same(t)) const_cast<at::Tensor&>(t).copy_(buffer[0]);
  }
}

void DistributedContext::Barrier() {
  if (world_size() == 1) return;
  group_->barrier()->wait();
}

}  // namespace dmue::training
