// Internal: the quantized matrix-vector product at decode as one CUDA kernel (qmv_fused.cpp).
#pragma once

#include <optional>

#include <mlx/array.h>

#include "ominix/nn/linear.h"

namespace ominix::nn::detail {

/// x W^T for a QuantizedLinear (without its additive bias) when x has at most a few rows, the
/// layer is MLX affine 4/8-bit with groups of 32-128 in x's float dtype and MLX runs on CUDA;
/// nullopt otherwise (the caller runs mx::quantized_matmul).
std::optional<mx::array> fused_qmv(const QuantizedLinear& layer, const mx::array& x);

}  // namespace ominix::nn::detail
