#include "ominix/nn/mlp.h"

#include "ominix/nn/fused.h"

namespace ominix::nn {

GatedMLP GatedMLP::load(io::WeightMap& w, const std::string& prefix, const Shape& shape,
                        const std::optional<io::QuantizationConfig>& quant) {
  const int D = shape.hidden, I = shape.intermediate;
  const bool b = shape.bias;
  return {FusedLinear({LinearLayer::load(w, prefix + "gate_proj", {D, I, b}, quant),
                       LinearLayer::load(w, prefix + "up_proj", {D, I, b}, quant)}),
          LinearLayer::load(w, prefix + "down_proj", {I, D, b}, quant), shape.act};
}

mx::array GatedMLP::operator()(const mx::array& x) const {
  if (auto gate_up = gate_up_proj.joint(x)) return down_proj(gated_joint(act, *gate_up));
  auto parts = gate_up_proj(x);
  return down_proj(gated(act, parts[0], parts[1]));
}

}  // namespace ominix::nn
