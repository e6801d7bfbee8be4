// The DMUE multi-branch network (She et al., CVPR 2021) with the reference's
// parameter names (base.layer4_<b>.*, classifiers.<b>.*, project_w.*,
// bottleneck.*), so reference state dicts map 1:1.
//
// ForwardTrain is the 'sp_confidence' forward: auxiliary branch c sees the
// samples whose label is not c (labels above c shifted down), and, run on the
// samples of class c, yields their latent distribution; the main branch feeds
// the pairwise-uncertainty head and the SP-KD Gram matrices. ForwardEval runs
// the main branch only.
#ifndef DMUE_DMUE_MODEL_H_
#define DMUE_DMUE_MODEL_H_

#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "dmue/model_config.pb.h"
#include "dmue/resnet.h"

namespace dmue {

struct TrainForwardOutput {
  torch::Tensor logits;                     // x_final [B, C], main branch.
  std::vector<torch::Tensor> aux_logits;    // x_list.c [B - n_c, C - 1].
  std::vector<torch::Tensor> aux_targets;   // targets.c [B - n_c], relabelled.
  std::vector<torch::Tensor> latent_logits; // softlabel_list.c [n_c, C - 1], no graph.
  std::vector<torch::Tensor> aux_gram;      // G_matrixs.c, row-L2-normalised.
  std::vector<torch::Tensor> main_gram;     // G_main_matrixs.c, row-L2-normalised.
  torch::Tensor score;                      // [B, 1] confidence in (0, 1).
  torch::Tensor weighted_logits;            // atten_x_final = logits * score.
  // Intermediates the parity tests compare.
  torch::Tensor statics;                    // [B, 2C] cos-mean (scaled) ++ one-hot.
  torch::Tensor main_pooled;                // [B, D] pooled main features.
  torch::Tensor main_bnneck;                // [B, D] after the bnneck.
};

// Per-class sample counts below 2 make the class means and the latent
// distributions undefined; the reference skips such batches.
absl::Status CheckBatch(const torch::Tensor& labels, int num_classes);

class DmueModelImpl : public torch::nn::Module {
 public:
  explicit DmueModelImpl(const ModelConfig& config);

  // Training forward; InvalidArgument when CheckBatch fails.
  absl::StatusOr<TrainForwardOutput> ForwardTrain(const torch::Tensor& images,
                                                  const torch::Tensor& labels);
  // Main-branch logits [B, C]; in eval() mode this is what the converted
  // inference model computes.
  torch::Tensor ForwardEval(const torch::Tensor& images);

  // Copies the main branch's layer4 (weights and BN statistics) into every
  // auxiliary branch, as the reference's msra mapping does with a pretrained
  // backbone; used when DMUE starts from a cross-entropy warm-up.
  void CopyMainLayer4ToAuxiliaryBranches();

  const ModelConfig& config() const { return config_; }
  int num_classes() const { return config_.num_classes(); }
  int main_branch() const { return config_.num_classes(); }

  // The reference's optimiser groups: base (lr1) and classifiers (lr2).
  std::vector<torch::Tensor> BaseParameters();
  std::vector<torch::Tensor> ClassifierParameters();
  // project_w and the bnneck weight: trained only on request (the reference
  // computes their gradients but never updates them).
  std::vector<torch::Tensor> HeadParameters();

 private:
  torch::Tensor Pool(const torch::Tensor& x);
  torch::Tensor Neck(const torch::Tensor& pooled);

  ModelConfig config_;
  ResNet base_{nullptr};
  torch::nn::ModuleList classifiers_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Sequential project_w_{nullptr};
  BatchNorm bottleneck_{nullptr};
};
TORCH_MODULE(DmueModel);

}  // namespace dmue

#endif  // DMUE_DMUE_MODEL_H_
