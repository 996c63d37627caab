// Mixture-of-experts routing and combination: the router (scores -> top-k experts and their
// weights) and the weighted sum of the chosen experts' outputs. On a GPU each is one custom kernel
// (mx::fast::cuda_kernel / mx::fast::metal_kernel); on the CPU, and as the reference in tests, the
// same computation in plain MLX ops.
#pragma once

#include <optional>

#include <mlx/array.h>

#include "ominix/nn/linear.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// How router logits become expert scores and weights.
enum class Routing {
  /// Qwen3-MoE: softmax over all experts, the top k probabilities (renormalised over the k with
  /// `norm_topk_prob`).
  softmax,
  /// Mixtral: the top k logits, softmax over those k.
  softmax_topk,
  /// GLM-4-MoE (DeepSeek-V3 "noaux_tc"): sigmoid; `bias` (e_score_correction_bias) added for the
  /// choice only; groups scored by the sum of their two best experts, the best `topk_group` of
  /// `n_group` kept; top k; weights from the un-biased sigmoid, renormalised with `norm_topk_prob`
  /// (+1e-20), times `routed_scaling_factor`.
  sigmoid_grouped,
};

/// Which implementation runs: `automatic` is the fused kernel on a GPU (unless the environment sets
/// OMINIX_MOE_FUSED=0) and plain ops on the CPU.
enum class KernelPath { automatic, plain, fused };

struct RouterOptions {
  Routing routing = Routing::softmax;
  int top_k = 1;
  bool norm_topk_prob = false;         ///< softmax and sigmoid_grouped
  int n_group = 1;                     ///< sigmoid_grouped
  int topk_group = 1;                  ///< sigmoid_grouped
  float routed_scaling_factor = 1.0f;  ///< sigmoid_grouped
  KernelPath path = KernelPath::automatic;
};

/// The experts a router picks per token and their weights.
struct Routes {
  mx::array indices;  ///< [..., k] uint32, best first
  mx::array weights;  ///< [..., k] float32, in the order of `indices`
};

/// Router: logits [..., E] (float32/float16/bfloat16; computed in float32) -> Routes. `bias` [E]
/// float32 is required by (and only used by) Routing::sigmoid_grouped.
///
/// Ties: experts are ranked by their choice score (softmax and softmax_topk: the logit, which
/// orders experts as the softmax does; sigmoid_grouped: sigmoid + bias), equal scores by the lower
/// expert index; groups likewise by score, then the lower group index. Both paths follow this rule,
/// so they pick the same experts in the same order. NaN scores are not supported.
Routes route(const mx::array& logits, const RouterOptions& options,
             const std::optional<mx::array>& bias = std::nullopt);

/// Router with its logits: route(x · gate_weightᵀ, options, bias) for x [..., D] and a dense
/// gate_weight [E, D], the logits rounded to `logits_dtype` (the type the reference's matmul gives)
/// before routing. On CUDA, for up to 16 rows (decode), one kernel computes the logits and routes:
/// one node of the step's graph where the matmul and route() take four or more (host time a step).
/// nullopt where that kernel does not apply (the CPU, Metal, long prompts, other shapes): then the
/// caller computes the logits its own way and calls route(). The logits are summed in float32 in
/// another order than MLX's matmul, so an expert tied with the k-th best within that rounding may
/// be chosen differently.
std::optional<Routes> route_gate(const mx::array& x, const mx::array& gate_weight,
                                 mx::Dtype logits_dtype, const RouterOptions& options,
                                 const std::optional<mx::array>& bias = std::nullopt);

/// route(gate(x), options), through route_gate where the gate is dense without a bias.
Routes route_linear(const mx::array& x, const LinearLayer& gate, const RouterOptions& options);

/// The weighted sum over the k experts: y [..., k, D] (any float dtype), weights [..., k] ->
/// [..., D] in y's dtype. Products and the sum in float32 (weights float32), one rounding at the
/// end (as astype(sum(y * weights[..., None], -2), y.dtype)).
mx::array combine_experts(const mx::array& y, const mx::array& weights,
                          KernelPath path = KernelPath::automatic);

/// True when `path` resolves to the fused kernels on the current default device.
bool use_fused_moe(KernelPath path);

}  // namespace ominix::nn
