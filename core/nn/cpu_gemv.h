// Internal: decode-time matrix-vector products on the CPU (core/nn/cpu_gemv.cpp).
#pragma once

#include <optional>

#include <mlx/array.h>

#include "ominix/io/config.h"

namespace ominix::nn::detail {

namespace mx = mlx::core;

/// x W^T for float32 x with 1-4 rows and float32 W [N, K] (evaluated, row-contiguous), computed
/// on the CPU with AVX2; nullopt where that does not apply (another device or dtype, more rows, a
/// processor without AVX2), and the caller runs mx::matmul.
std::optional<mx::array> cpu_gemv(const mx::array& x, const mx::array& w);

/// The same over MLX affine 4- or 8-bit weights (packed uint32 [N, K*bits/32]) with float32
/// scales and biases [N, K/group_size]; the caller runs mx::quantized_matmul where it returns
/// nullopt.
std::optional<mx::array> cpu_qgemv(const mx::array& x, const mx::array& w, const mx::array& scales,
                                   const mx::array& biases, const io::QuantSpec& spec);

}  // namespace ominix::nn::detail
