// Fused steps of a dense decoder layer, as MLX custom kernels on CUDA with the plain MLX ops as
// the reference and as the path on every other device. A decode step costs MLX's backend time
// per graph node on the host (docs/PERFORMANCE.md), so each call here replaces several nodes by
// one. docs/kernels.md lists them with what they measured.
#pragma once

#include <optional>

#include <mlx/array.h>

#include "ominix/nn/activations.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/norm.h"
#include "ominix/nn/rope.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// Whether the custom kernels may run: on by default; OMINIX_FUSED_KERNELS=0 in the environment
/// or set_fused_kernels(false) keeps the plain ops everywhere (for A/B runs and tests).
bool fused_kernels_enabled();
void set_fused_kernels(bool enabled);

/// Queries [B, H, L, Dh], keys and values [B, Hkv, L, Dh].
struct Heads {
  mx::array queries, keys, values;
};

struct QkvHeadsOptions {
  int n_heads = 0, n_kv_heads = 0;
  const RMSNorm* q_norm = nullptr;  ///< per-head norm before RoPE (Qwen3); both or neither
  const RMSNorm* k_norm = nullptr;
  const RoPE* rope = nullptr;  ///< applied to queries and keys at positions offset, offset+1, ...
  int offset = 0;
  /// Per-token rotation (M-RoPE) instead of `rope`; always the plain ops.
  const RotaryTables* tables = nullptr;
};

/// The attention heads of x [B, L, D] through q|k|v projections (joined or not): split per head,
/// queries and keys normed per head (when given) and rotated, all laid out head-major. On CUDA,
/// with the projections joined, RoPE frequencies fixed and head sizes a multiple of 64, this is
/// one kernel after the matmul.
Heads qkv_heads(const FusedLinear& qkv_proj, const mx::array& x, const QkvHeadsOptions& options);

/// h = x + r and norm(h), in one pass on CUDA: the residual add and the norm that follows it.
struct AddNorm {
  mx::array sum, normed;
};
AddNorm add_rms_norm(const mx::array& x, const mx::array& r, const RMSNorm& norm);

/// A residual stream whose last add is pending: its value is h + r, or h when r is absent. A
/// decoder layer returns {h, its MLP output} and leaves the add to the next layer's input norm
/// (or the final norm), so on CUDA the add costs no kernel of its own: one kernel less per layer
/// at decode. The sum is rounded to the dtype as mx::add rounds it.
struct Residual {
  mx::array h;
  std::optional<mx::array> r;
};
/// h + r (or h): the stream's value, for code that reads the hidden state itself.
mx::array value(const Residual& x);
/// add_rms_norm(h, r, norm) when r is present, else {h, norm(h)}.
AddNorm add_rms_norm(const Residual& x, const RMSNorm& norm);

/// act(gate) * up from a joint gate|up projection [..., 2I] (gate first) -> [..., I].
mx::array gated_joint(Activation act, const mx::array& gate_up);

}  // namespace ominix::nn
