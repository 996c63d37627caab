// Internal: the decode-time MoE expert path as two CUDA kernels (core/nn/experts_fused.cpp).
#pragma once

#include <optional>

#include <mlx/array.h>

#include "ominix/nn/moe.h"
#include "ominix/nn/switch.h"

namespace ominix::nn::detail {

/// combine_experts(glu(x, routes.indices), routes.weights) for x [B, L, D] as two kernels, when
/// the experts, the device and the size allow it (see SwitchGLU::operator()(x, routes));
/// nullopt otherwise.
std::optional<mx::array> fused_experts(const SwitchGLU& glu, const mx::array& x,
                                       const Routes& routes);

}  // namespace ominix::nn::detail
