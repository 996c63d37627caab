// The Llama-style self-attention block that Qwen2/Qwen3, GLM-4 and Mistral/Mixtral share:
// q/k/v projections (run as one matmul where their weights can be joined), optional per-head
// q/k RMSNorm, RoPE, the layer's KV cache and SDPA, then o_proj. Members carry the checkpoint's
// names under `<prefix>` (self_attn.q_proj, ...).
#pragma once

#include <optional>
#include <string>

#include <mlx/array.h>

#include "ominix/generate/cache.h"
#include "ominix/io/config.h"
#include "ominix/io/weights.h"
#include "ominix/nn/attention.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/norm.h"
#include "ominix/nn/rope.h"

namespace ominix::generate {

namespace mx = mlx::core;

struct SelfAttentionOptions {
  bool qkv_bias = false;  ///< q_proj, k_proj and v_proj have a bias
  bool o_bias = false;
  bool qk_norm = false;  ///< `<prefix>q_norm` / `k_norm` RMSNorm over each head, before RoPE
  float rms_norm_eps = 1e-6f;
};

struct SelfAttention {
  nn::FusedLinear qkv_proj;  ///< q_proj | k_proj | v_proj
  nn::LinearLayer o_proj;
  std::optional<nn::RMSNorm> q_norm, k_norm;
  nn::RoPE rope;
  int n_heads, n_kv_heads;
  float scale;

  /// Binds `<prefix>{q,k,v,o}_proj` (+ q_norm/k_norm); prefix ends with '.'.
  static SelfAttention load(io::WeightMap& w, const std::string& prefix,
                            const io::AttentionConfig& attention, const io::RopeConfig& rope,
                            const std::optional<io::QuantizationConfig>& quant,
                            const SelfAttentionOptions& options = {});

  /// x [B, L, D] -> [B, L, D], attending to the cache's keys (this call's appended) under mask.
  /// The tokens are rotated at the cache's offset onwards unless `positions` says otherwise.
  mx::array operator()(const mx::array& x, const nn::AttentionMask& mask, LayerCache& cache,
                       const nn::RotaryPositions& positions = {}) const;
};

}  // namespace ominix::generate
