// The gated feed-forward block of Llama-style decoders (SwiGLU, GeGLU).
#pragma once

#include <optional>
#include <string>

#include <mlx/array.h>

#include "ominix/io/config.h"
#include "ominix/io/weights.h"
#include "ominix/nn/activations.h"
#include "ominix/nn/linear.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// down_proj(act(gate_proj(x)) * up_proj(x)); x [..., hidden] -> [..., hidden]. gate_proj and
/// up_proj run as one matmul where their weights can be joined (nn::FusedLinear).
struct GatedMLP {
  FusedLinear gate_up_proj;  ///< gate_proj | up_proj
  LinearLayer down_proj;
  Activation act;

  struct Shape {
    int hidden = 0, intermediate = 0;
    Activation act = Activation::silu;
    bool bias = false;  ///< the three projections have a bias (Llama's mlp_bias)
  };
  /// Binds `<prefix>gate_proj`, `<prefix>up_proj` and `<prefix>down_proj` (prefix ends with '.').
  static GatedMLP load(io::WeightMap& w, const std::string& prefix, const Shape& shape,
                       const std::optional<io::QuantizationConfig>& quant);

  mx::array operator()(const mx::array& x) const;
};

}  // namespace ominix::nn
