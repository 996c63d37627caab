#include "ominix/nn/norm.h"

#include <mlx/fast.h>

namespace ominix::nn {

mx::array RMSNorm::operator()(const mx::array& x) const { return mx::fast::rms_norm(x, weight, eps); }

RMSNorm RMSNorm::load(io::WeightMap& w, const std::string& prefix, int dim, float eps) {
  return RMSNorm{w.take(prefix + ".weight", {dim}), eps};
}

mx::array LayerNorm::operator()(const mx::array& x) const {
  return mx::fast::layer_norm(x, weight, bias, eps);
}

LayerNorm LayerNorm::load(io::WeightMap& w, const std::string& prefix, int dim, float eps, bool affine) {
  LayerNorm n{.weight = std::nullopt, .bias = std::nullopt, .eps = eps};
  if (affine) {
    n.weight = w.take(prefix + ".weight", {dim});
    n.bias = w.take_optional(prefix + ".bias", {dim});
  }
  return n;
}

}  // namespace ominix::nn
