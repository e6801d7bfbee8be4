#include "dmue/testing/golden.h"

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dmue::testing {

absl::StatusOr<std::map<std::string, torch::Tensor>> LoadGoldenTensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open golden file '", path, "'"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, torch::Tensor> tensors;
  try {
    c10::IValue value = torch::pickle_load(bytes);
    for (const auto& item : value.toGenericDict()) {
      tensors[item.key().toStringRef()] = item.value().toTensor();
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("cannot read golden file '", path, "': ", e.what()));
  }
  return tensors;
}

double MaxRelativeError(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor da = a.to(torch::kDouble), db = b.to(torch::kDouble);
  const double scale = db.abs().max().item<double>();
  const double diff = (da - db).abs().max().item<double>();
  if (scale == 0.0) return diff;
  return diff / scale;
}

double AllCloseRatio(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  torch::Tensor da = a.to(torch::kDouble), db = b.to(torch::kDouble);
  if (da.numel() == 0) return 0.0;
  return ((da - db).abs() / (db.abs() * rtol + atol)).max().item<double>();
}

}  // namespace dmue::testing
