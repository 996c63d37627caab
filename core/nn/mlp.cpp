#include "ominix/nn/mlp.h"

namespace ominix::nn {

GatedMLP GatedMLP::load(io::WeightMap& w, const std::string& prefix, const Shape& shape,
                        const std::optional<io::QuantizationConfig>& quant) {
  const int D = shape.hidden, I = shape.intermediate;
  return {LinearLayer::load(w, prefix + "gate_proj", {D, I}, quant),
          LinearLayer::load(w, prefix + "up_proj", {D, I}, quant),
          LinearLayer::load(w, prefix + "down_proj", {I, D}, quant), shape.act};
}

}  // namespace ominix::nn
