// Backbone pretraining on face identities as the reference's pretrain/ does:
// MVFace = ResNet features ("feat_net", the same backbone DMUE uses, one
// layer4) + global average pooling + the MV-Softmax head ("loss_layer"),
// whose checkpoints load into DMUE with the "msra" mapping.
//
// MV-Softmax (Wang et al., AAAI 2020): cosine logits against L2-normalised
// class weights; the ground-truth logit gets an additive (AM) or angular
// (Arc) margin, and mis-classified "hard" logits t are re-weighted to
// mask * t + mask - 1; everything is scaled by `scale`. As in the reference,
// the features are not normalised (its comment says they are; its code does
// not); `normalize_features` fixes that when set.
#ifndef TRAINING_MV_SOFTMAX_H_
#define TRAINING_MV_SOFTMAX_H_

#include <torch/torch.h>

#include "dmue/model_config.pb.h"
#include "dmue/resnet.h"

namespace dmue::training {

struct MvSoftmaxOptions {
  bool is_am = true;  // false: the Arc variant
  double margin = 0.35;
  double mask = 1.12;
  double scale = 32;
  bool normalize_features = false;
};

class MvSoftmaxImpl : public torch::nn::Module {
 public:
  MvSoftmaxImpl(int feat_dim, int num_classes, const MvSoftmaxOptions& options);
  // Scaled, margin-adjusted logits [B, num_classes] for cross entropy.
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& labels);

 private:
  MvSoftmaxOptions options_;
  torch::Tensor weight_;  // [feat_dim, num_classes], registered as "weight".
};
TORCH_MODULE(MvSoftmax);

class MvFaceImpl : public torch::nn::Module {
 public:
  MvFaceImpl(const ModelConfig& backbone, int num_identities, const MvSoftmaxOptions& options);
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& labels);
  // Pooled features [B, D].
  torch::Tensor Features(const torch::Tensor& images);

 private:
  ResNet feat_net_{nullptr};
  MvSoftmax loss_layer_{nullptr};
};
TORCH_MODULE(MvFace);

}  // namespace dmue::training

#endif  // TRAINING_MV_SOFTMAX_H_
