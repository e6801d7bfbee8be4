// Descriptor distillation (issue 13): a ResNet trunk learns to reproduce a
// frozen face-identity teacher's descriptor (face-api's 128-d dlib ResNet,
// dmue/face_descriptor_net.h) on unlabelled faces, to start DMUE from an
// identity-aware trunk as the paper does from MS-Celeb-1M.
//
// The teacher costs ~10x the student per image, so its descriptors of every
// training image and of its mirror are computed once into a cache file
// (written atomically, resumable, refused when the image list, the teacher
// or its input changed); training then only runs the student.
//
// Views: the teacher sees the decoded image (grey replicated to 3 channels
// when the data is grey), resized with PIL bilinear to 150x150, values
// 0..255, and its mirror; the student sees the data config's augmented view
// (e.g. 64x64 grey), mirrored where the target is the mirror's descriptor.
#ifndef TRAINING_DESCRIPTOR_DISTILL_H_
#define TRAINING_DESCRIPTOR_DISTILL_H_

#include <cstdint>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "datasets/example_source.h"
#include "datasets/loader.h"
#include "datasets/transforms.h"
#include "dmue/model_config.pb.h"
#include "dmue/resnet.h"

namespace dmue::training {

// A frozen image -> descriptor function (an interface so that tests can pass
// a small stand-in).
class DescriptorTeacher {
 public:
  virtual ~DescriptorTeacher() = default;
  virtual int input_side() const = 0;
  virtual int descriptor_size() const = 0;
  // Names the teacher's weights; part of the cache's key.
  virtual std::string fingerprint() const = 0;
  // [N, 3, side, side] float32 RGB, values 0..255 -> [N, descriptor_size]
  // float32.
  virtual absl::StatusOr<at::Tensor> Describe(const at::Tensor& images) const = 0;
};

// FaceDescriptorNet from face-api's model folder ("" = its default place).
absl::StatusOr<std::unique_ptr<DescriptorTeacher>> LoadFaceApiTeacher(const std::string& model_dir);

// The teacher's input transform: [grey ->] PIL-bilinear resize to side x
// side, CHW floats 0..255 (the eval transform with mean 0 and std 1/255).
datasets::TransformOptions TeacherTransform(int side, bool grayscale);

// FNV-1a of the source's LMDB keys in order: the image list's identity.
uint64_t ImageListHash(const datasets::LmdbSource& source);

struct TeacherCacheOptions {
  std::string path;           // the cache file
  bool grayscale = false;     // the teacher's input is grey (as the student's)
  int batch_size = 16;        // images per teacher call (x2 with mirrors)
  double save_seconds = 60;   // save progress at least this often (0: every batch)
};

// Descriptors [N, 2, D] float32 of every image of `source` (view 0: as is,
// view 1: mirrored). Reuses the cache at options.path when its header
// matches (image count, descriptor size, image-list hash, teacher and input
// fingerprint; FailedPrecondition naming the mismatch otherwise) and computes
// only the images it lacks, saving progress atomically as it goes (also when
// the teacher fails), with items/s and ETA on stderr.
absl::StatusOr<at::Tensor> BuildTeacherCache(const datasets::LmdbSource& source, const DescriptorTeacher& teacher,
                                             const TeacherCacheOptions& options);

// A training batch as the student sees it and its targets: each image
// mirrored with probability flip_p (drawn from seed, batch.epoch,
// batch.batch_index and its position, so a rerun draws the same), and its
// target the cached descriptor [N, 2, D] of the same image in the same view.
struct StudentBatch {
  at::Tensor images;   // [B, 3, H, W]
  at::Tensor targets;  // [B, D]
};
StudentBatch MirrorWithTargets(const datasets::Batch& batch, const at::Tensor& descriptors, double flip_p,
                               uint64_t seed);

// The student: the trunk as DMUE's ("feat_net", one layer4) + global average
// pooling + a linear projection "fc" to the descriptor size. The MSRA
// mapping skips keys containing "fc", so its checkpoints load into DMUE
// unchanged.
class DescriptorStudentImpl : public torch::nn::Module {
 public:
  DescriptorStudentImpl(const ModelConfig& backbone, int descriptor_size);
  torch::Tensor forward(const torch::Tensor& images);  // [B, descriptor_size]

 private:
  ResNet feat_net_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(DescriptorStudent);

// mean(1 - cos(student_i, teacher_i)), in [0, 2]. Equal to half the squared
// distance of the L2-normalised vectors (the MSE alternative), so the two
// are one loss; written as 1 - cos because it is bounded and reads directly
// as an angle. It ignores the norm: the trunk feature goes to DMUE, not the
// descriptor, so only the geometry of directions needs to be learnt.
torch::Tensor DescriptorLoss(const torch::Tensor& student, const torch::Tensor& teacher);

}  // namespace dmue::training

#endif  // TRAINING_DESCRIPTOR_DISTILL_H_
