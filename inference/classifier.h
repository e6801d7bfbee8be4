// A runnable expression classifier: a model bundle (weights + ModelSpec) with
// every BatchNorm folded into its convolutions (dmue/folded_model.h), run with
// the compute options asked for. AUTO times fp32 NCHW, fp32 channels-last and
// bf16 channels-last on this CPU at load time (dmue's ChooseInferenceCompute)
// and logs the choice; FP32 and BF16 fix the dtype.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Classifier> classifier,
//                    Classifier::Load("model.pth", /*spec_path=*/"", ClassifierOptions{}));
//   ASSIGN_OR_RETURN(std::vector<float> probabilities, classifier->Classify(inputs.data(), n));
//
// Inputs are preprocessed faces (inference/face_input.h): n x 3 x S x S
// floats, S = the spec's input.crop. Exceptions out of LibTorch come back as
// an Internal status; nothing throws. Classify is safe to call from several
// threads at once (the folded model is read-only).
#ifndef INFERENCE_CLASSIFIER_H_
#define INFERENCE_CLASSIFIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/compute.h"
#include "dmue/folded_model.h"
#include "dmue/inference_model.h"
#include "dmue/model_spec.pb.h"

namespace dmue::inference {

enum class PrecisionChoice { kAuto, kFloat32, kBFloat16 };

// "auto" | "fp32" | "bf16" (any case); the error names `flag`.
absl::StatusOr<PrecisionChoice> ParsePrecision(absl::string_view name, absl::string_view flag);

struct ClassifierOptions {
  PrecisionChoice precision = PrecisionChoice::kAuto;
  // Layout for FP32 / BF16; AUTO measures it.
  bool channels_last = true;
  // LibTorch intra-op threads (process-wide); 0 leaves the current setting.
  int num_threads = 0;
  // AUTO's probe: the batch sizes the caller will run (timed summed).
  std::vector<int64_t> auto_batch_sizes = {1, 8};
  // Where the folded model runs (and AUTO probes): "cpu", "cuda" or
  // "cuda:N" (dmue/compute.h's ParseDevice). A device this LibTorch cannot
  // use fails Load / FromModel with FailedPrecondition.
  std::string device = "cpu";
};

class Classifier {
 public:
  // Loads the bundle (LoadModelBundle: the spec at `spec_path`, or the one
  // beside the weights; a spec that does not fit the weights is refused
  // naming both files), then folds it with `options`.
  static absl::StatusOr<std::unique_ptr<Classifier>> Load(const std::string& weights_path,
                                                          const std::string& spec_path,
                                                          const ClassifierOptions& options);
  // An inference model already loaded (the evaluator's checkpoints of any
  // kind), `num_classes` outputs on `input_side` x `input_side` inputs. The
  // model is read, not kept.
  static absl::StatusOr<std::unique_ptr<Classifier>> FromModel(InferenceModel& model, int num_classes,
                                                               int input_side, const ClassifierOptions& options);

  // Probabilities [n, C] (row-major) of n preprocessed inputs.
  absl::StatusOr<std::vector<float>> Classify(const float* inputs, int n) const;
  // The same on a [B, 3, S, S] float tensor on any device: softmax [B, C],
  // float32, on the CPU.
  absl::StatusOr<torch::Tensor> Probabilities(const torch::Tensor& images) const;

  int num_classes() const { return num_classes_; }
  int input_side() const { return input_side_; }
  // Floats per input: 3 x S x S.
  int64_t input_size() const { return 3 * int64_t{input_side_} * input_side_; }
  // The bundle's spec (Load only; FromModel leaves it empty).
  const ModelSpec& spec() const { return spec_; }
  const ComputeOptions& compute() const { return model_.compute(); }
  // "fp32 channels-last (AUTO: ...)" for logs and reports.
  const std::string& compute_summary() const { return compute_summary_; }

 private:
  Classifier(FoldedModel model, int num_classes, int input_side, std::string compute_summary)
      : model_(std::move(model)),
        num_classes_(num_classes),
        input_side_(input_side),
        compute_summary_(std::move(compute_summary)) {}

  const FoldedModel model_;
  const int num_classes_;
  const int input_side_;
  const std::string compute_summary_;
  ModelSpec spec_;
};

}  // namespace dmue::inference

#endif  // INFERENCE_CLASSIFIER_H_
