// Inference with every BatchNorm folded away: the inference model's weights
// rewritten once into convolutions with a bias (conv -> BN becomes one conv;
// the bnneck folds into the classifier), laid out once for the chosen compute
// (channels-last, bf16 weights cast ahead of time), so a forward pass is just
// the convolutions, ReLUs, pools and one matrix product. Logits match the
// unfolded model in eval mode to float32 rounding (tested within 1e-4).
//
// IBN-a blocks keep their InstanceNorm half (it normalises each image by its
// own statistics and cannot be folded); their BatchNorm half is folded.
#ifndef DMUE_FOLDED_MODEL_H_
#define DMUE_FOLDED_MODEL_H_

#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "dmue/inference_model.h"
#include "dmue/compute.h"

namespace dmue {

struct FoldedConv {
  torch::Tensor weight;  // [out, in, k, k], the BatchNorm scale folded in
  torch::Tensor bias;    // [out], the BatchNorm shift
  int64_t stride = 1;
  int64_t padding = 0;
  torch::Tensor Apply(const torch::Tensor& x) const;
};

struct FoldedBlock {
  FoldedConv conv1, conv2;
  std::optional<FoldedConv> conv3;       // bottlenecks only
  std::optional<FoldedConv> downsample;  // the shortcut's conv + BN
  // IBN-a: conv1's first `instance_channels` outputs are instance-normalised.
  int64_t instance_channels = 0;
  torch::Tensor instance_weight, instance_bias;
  double instance_eps = 1e-5;
  torch::Tensor Apply(const torch::Tensor& x) const;
};

class FoldedModel {
 public:
  // Reads `model`'s weights and running statistics (it is not modified; it
  // may be on any device). `compute` fixes the weights' device, layout and
  // dtype for every later call.
  static absl::StatusOr<FoldedModel> Fold(InferenceModel& model, const ComputeOptions& compute);

  // Logits [B, C] (float32, on the compute device) for normalised images
  // [B, 3, H, W] on any device; no autograd.
  torch::Tensor Forward(const torch::Tensor& images) const;

  const ComputeOptions& compute() const { return compute_; }

 private:
  FoldedModel() = default;
  torch::Tensor Pool(const torch::Tensor& maps) const;

  ModelConfig config_;
  ComputeOptions compute_;
  FoldedConv stem_;
  std::vector<FoldedBlock> blocks_;
  torch::Tensor classifier_weight_, classifier_bias_;  // bnneck folded in, float32
};

// AUTO compute for inference, like cudnn.benchmark: folds the model for each
// candidate (fp32 NCHW, fp32 channels-last, bf16 channels-last), times a
// forward pass at each of `batch_sizes` on `image_size` inputs, and keeps the
// fastest (summed over the batch sizes) whose softmax stays within
// `max_probability_deviation` (absolute, max over a random batch) of fp32
// NCHW's. Which wins depends on the CPU, so it is measured, not assumed.
struct InferenceComputeTrial {
  std::string name;
  ComputeOptions options;
  double seconds = 0;  // best of the timed passes, summed over the batch sizes
  double probability_deviation = 0;
  bool within_bound = true;
  std::string skipped;  // why it was not timed (empty: it was); never chosen then
};

struct InferenceComputeChoice {
  ComputeOptions options;
  std::vector<InferenceComputeTrial> trials;
  std::string Summary() const;  // one line for the log
};

struct InferenceComputeProbe {
  std::vector<int64_t> batch_sizes = {1, 8};
  int64_t image_size = 64;
  int timed_passes = 3;  // after one untimed pass
  double max_probability_deviation = 0.02;
  torch::Device device = torch::kCPU;  // every candidate runs here
};

absl::StatusOr<InferenceComputeChoice> ChooseInferenceCompute(InferenceModel& model,
                                                              const InferenceComputeProbe& probe);

}  // namespace dmue

#endif  // DMUE_FOLDED_MODEL_H_
