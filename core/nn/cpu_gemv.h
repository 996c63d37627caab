// Internal: decode-time matrix-vector products on the CPU (core/nn/cpu_gemv.cpp).
#pragma once

#include <optional>

#include <mlx/array.h>

#include "ominix/io/config.h"

namespace ominix::nn::detail {

namespace mx = mlx::core;

/// x W^T for x with any number of rows (taken 64 at a time) and W [N, K] (evaluated,
/// row-contiguous), both float32 or both bfloat16, computed on the CPU with AVX2 in float32;
/// nullopt where that does not apply (another device or dtype, a processor without AVX2), and the
/// caller runs mx::matmul.
std::optional<mx::array> cpu_gemv(const mx::array& x, const mx::array& w);

/// The same over MLX affine 2- to 8-bit weights (packed uint32 [N, K*bits/32]) with scales and
/// biases [N, K/group_size] in x's dtype; the caller runs mx::quantized_matmul where it returns
/// nullopt.
std::optional<mx::array> cpu_qgemv(const mx::array& x, const mx::array& w, const mx::array& scales,
                                   const mx::array& biases, const io::QuantSpec& spec);

/// x W^T batch by batch for x [..., M, K] and w [..., N, K] with the same leading dims (at least
/// one), both float32 or both bfloat16: attention's products on the CPU (scores = q k^T, and the
/// output as p (v^T)^T), where MLX's matmul goes to the reference BLAS of the mlx-cpu wheel. w need
/// not be evaluated (it is made contiguous in the graph); nullopt where this does not apply.
std::optional<mx::array> cpu_matmul_nt(const mx::array& x, const mx::array& w);

}  // namespace ominix::nn::detail
