// Normalisation layers over mlx::core::fast kernels.
#pragma once

#include <optional>
#include <string>

#include <mlx/array.h>

#include "ominix/io/weights.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// x / rms(x) * weight, over the last axis. weight [dim].
struct RMSNorm {
  mx::array weight;
  float eps = 1e-6f;
  mx::array operator()(const mx::array& x) const;
  static RMSNorm load(io::WeightMap& w, const std::string& prefix, int dim, float eps);
};

/// (x - mean) / sqrt(var + eps) * weight + bias, over the last axis; weight/bias optional.
struct LayerNorm {
  std::optional<mx::array> weight, bias;
  float eps = 1e-5f;
  mx::array operator()(const mx::array& x) const;
  static LayerNorm load(io::WeightMap& w, const std::string& prefix, int dim, float eps,
                        bool affine = true);
};

}  // namespace ominix::nn
