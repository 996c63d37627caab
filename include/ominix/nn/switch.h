// Mixture-of-experts layers: the experts' weights stacked [E, out, in] and applied per token with
// gather_mm / gather_qmm (mlx-lm switch_layers.py), dense or MLX-quantized.
#pragma once

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <mlx/array.h>

#include "ominix/io/config.h"
#include "ominix/io/weights.h"
#include "ominix/nn/activations.h"
#include "ominix/nn/moe.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// The experts' linear layers stacked: weight [E, out, in], or MLX-quantized weight
/// [E, out, in*bits/32] with scales/biases [E, out, in/group_size] (mlx-lm's
/// QuantizedSwitchLinear).
struct SwitchLinear {
  mx::array weight;
  std::optional<mx::array> scales, biases;
  std::optional<io::QuantSpec> spec;

  /// Binds `<prefix>.weight` (+ `.scales`/`.biases` when quantized) for `num_experts` [out, in]
  /// matrices; WeightError if quantized but `quant` has no spec for `prefix`.
  static SwitchLinear load(io::WeightMap& w, const std::string& prefix, int num_experts, int in,
                           int out, const std::optional<io::QuantizationConfig>& quant);

  /// x [..., 1, in] through the experts `indices` [...] -> [..., 1, out]. `sorted`: the indices are
  /// sorted (gather_mm's sorted_indices fast path). `rows` (uint32, shaped like `indices`): the
  /// row of x's flattened batch each pair reads (gather_mm's lhs_indices; MLX's default if absent).
  /// `dequantized`: quantized experts run dequantized through gather_mm (for long prompts).
  mx::array operator()(const mx::array& x, const mx::array& indices, bool sorted,
                       const std::optional<mx::array>& rows = std::nullopt,
                       bool dequantized = false) const;
};

struct SwitchGLUShape {
  int num_experts = 0;
  int dim = 0;         ///< model width D
  int hidden_dim = 0;  ///< each expert's intermediate size I
};

struct SwitchGLUOptions {
  Activation activation = Activation::silu;
  /// From this many (token, expert) pairs on, pairs are sorted by expert so each expert reads
  /// contiguous rows (mlx-lm sorts at 64).
  int sort_threshold = 64;
  /// The fused decode kernels of operator()(x, routes): automatic (on CUDA unless
  /// OMINIX_MOE_FUSED=0), plain (never), fused (where they apply).
  KernelPath path = KernelPath::automatic;
};

/// ref: mlx-lm switch_layers.py SwitchGLU — each token through its k experts' gated MLPs,
/// down_proj(act(gate_proj(x)) * up_proj(x)).
struct SwitchGLU {
  SwitchLinear gate_proj, up_proj, down_proj;
  SwitchGLUOptions options;

  /// Binds `<prefix>{gate,up,down}_proj` (prefix ends with '.').
  static SwitchGLU load(io::WeightMap& w, const std::string& prefix, const SwitchGLUShape& shape,
                        const std::optional<io::QuantizationConfig>& quant,
                        const SwitchGLUOptions& options = {});

  /// x [B, L, D], indices [B, L, k] (int) -> [B, L, k, D].
  mx::array operator()(const mx::array& x, const mx::array& indices) const;

  /// The MoE expert path: each token through its routed experts, their outputs weighted by
  /// `routes.weights` and summed -> [B, L, D] (combine_experts of the above). On CUDA, for a few
  /// tokens (decode) of 4/8-bit affine-quantized SiLU experts, this is two custom kernels: gate,
  /// up and SiLU in one, down and the weighted sum in the other.
  mx::array operator()(const mx::array& x, const Routes& routes) const;
};

/// Per-expert checkpoint tensors to stack: `<from><e>.<name>.weight` [out, in] for e in [0, E)
/// becomes `<to><stacked>.weight` [E, out, in].
struct ExpertStack {
  std::string from;  ///< e.g. "model.layers.3.mlp.experts."
  std::string to;    ///< e.g. "model.layers.3.mlp.switch_mlp."
  int num_experts = 0;
  /// (per-expert name, stacked name, per-expert [out, in]).
  std::vector<std::tuple<std::string, std::string, mx::Shape>> projections;
};

/// Sanitize step for Hugging Face MoE checkpoints: stacks the experts of `s` unless the stacked
/// tensors (dense or quantized) are already there. Missing experts are recorded by `w`.
void stack_experts(io::WeightMap& w, const ExpertStack& s);

}  // namespace ominix::nn
