// Test helper: reads the golden tensor files of ../shared/golden (plain
// {str: Tensor} dicts in torch.save zip format) into a name -> tensor map.
#ifndef DMUE_TESTING_GOLDEN_H_
#define DMUE_TESTING_GOLDEN_H_

#include <map>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace dmue::testing {

absl::StatusOr<std::map<std::string, torch::Tensor>> LoadGoldenTensors(const std::string& path);

// max |a - b| / max(|b|), 0 when b is all zero and a == b.
double MaxRelativeError(const torch::Tensor& a, const torch::Tensor& b);

// max over elements of |a - b| / (atol + rtol |b|): <= 1 means allclose.
double AllCloseRatio(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol);

}  // namespace dmue::testing

#endif  // DMUE_TESTING_GOLDEN_H_
