// A small CNN learns the synthetic faces well above chance within a short CPU
// budget (tagged manual: ~1 minute on 2 cores).
#include <chrono>

#include <torch/torch.h>

#include "datasets/synthetic_faces.h"
#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

torch::Tensor ToTensor(const cv::Mat& rgb) {
  return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat)
      .div(255.0)
      .sub(0.5)
      .div(0.5);
}

struct SmallCnnImpl : torch::nn::Module {
  SmallCnnImpl(int classes) {
    int in = 3;
    for (int out : {16, 32, 64, 64}) {
      convs->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
      convs->push_back(torch::nn::BatchNorm2d(out));
      convs->push_back(torch::nn::ReLU());
      convs->push_back(torch::nn::MaxPool2d(2));
      in = out;
    }
    register_module("convs", convs);
    fc = register_module("fc", torch::nn::Linear(64, classes));
  }
  torch::Tensor forward(torch::Tensor x) { return fc(convs->forward(x).mean({2, 3})); }
  torch::nn::Sequential convs;
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(SmallCnn);

TEST(SyntheticLearnabilityTest, SmallCnnBeatsChance) {
  torch::manual_seed(0);
  SyntheticFaceGenerator generator({}, 123);
  const int train = 4000, val = 800;
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (int i = 0; i < train + val; ++i) {
    SyntheticFace face = generator.Generate(i);
    images.push_back(ToTensor(face.image));
    labels.push_back(face.label);
  }
  torch::Tensor x = torch::stack(images), y = torch::tensor(labels);
  torch::Tensor x_train = x.slice(0, 0, train), y_train = y.slice(0, 0, train);
  torch::Tensor x_val = x.slice(0, train), y_val = y.slice(0, train);
  SmallCnn model(8);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(2e-3));
  const auto start = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < 4; ++epoch) {
    model->train();
    torch::Tensor perm = torch::randperm(train);
    for (int b = 0; b + 64 <= train; b += 64) {
      torch::Tensor idx = perm.slice(0, b, b + 64);
      optimizer.zero_grad();
      torch::Tensor loss = torch::cross_entropy_loss(model->forward(x_train.index_select(0, idx)),
                                                     y_train.index_select(0, idx));
      loss.backward();
      optimizer.step();
    }
    model->eval();
    torch::NoGradGuard no_grad;
    const double accuracy = model->forward(x_val).argmax(1).eq(y_val).to(torch::kFloat).mean().item<double>();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("epoch %d: val accuracy %.3f after %.1f s\n", epoch, accuracy, seconds);
    if (epoch == 3) {
      EXPECT_GT(accuracy, 0.5);  // chance 0.125
    }
  }
}

}  // namespace
}  // namespace dmue::datasets
