#include "ominix/generate/attention.h"

#include <cmath>

#include <mlx/ops.h>

#include "ominix/nn/fused.h"

namespace ominix::generate {

SelfAttention SelfAttention::load(io::WeightMap& w, const std::string& p,
                                  const io::AttentionConfig& a, const io::RopeConfig& rope,
                                  const std::optional<io::QuantizationConfig>& quant,
                                  const SelfAttentionOptions& o) {
  const int D = a.hidden_size, q_dim = a.num_attention_heads * a.head_dim,
            kv_dim = a.num_key_value_heads * a.head_dim;
  auto linear = [&](const char* name, nn::LinearShape shape) {
    return nn::LinearLayer::load(w, p + name, shape, quant);
  };
  SelfAttention attn{.qkv_proj = nn::FusedLinear({linear("q_proj", {D, q_dim, o.qkv_bias}),
                                                  linear("k_proj", {D, kv_dim, o.qkv_bias}),
                                                  linear("v_proj", {D, kv_dim, o.qkv_bias})}),
                     .o_proj = linear("o_proj", {q_dim, D, o.o_bias}),
                     .q_norm = std::nullopt,
                     .k_norm = std::nullopt,
                     .rope = nn::RoPE(rope, a.head_dim),
                     .n_heads = a.num_attention_heads,
                     .n_kv_heads = a.num_key_value_heads,
                     .scale = 1.0f / std::sqrt(float(a.head_dim))};
  if (o.qk_norm) {
    attn.q_norm = nn::RMSNorm::load(w, p + "q_norm", a.head_dim, o.rms_norm_eps);
    attn.k_norm = nn::RMSNorm::load(w, p + "k_norm", a.head_dim, o.rms_norm_eps);
  }
  return attn;
}

mx::array SelfAttention::operator()(const mx::array& x, const nn::AttentionMask& mask,
                                    LayerCache& cache, const nn::RotaryPositions& positions) const {
  const int B = x.shape(0), L = x.shape(1);
  // [B,L,D] -> queries [B,H,L,Dh], keys/values [B,Hkv,L,Dh]; q/k normed per head, then RoPE
  // (on the first Dh * partial_rotary_factor dims).
  auto heads = nn::qkv_heads(qkv_proj, x,
                             {.n_heads = n_heads,
                              .n_kv_heads = n_kv_heads,
                              .q_norm = q_norm ? &*q_norm : nullptr,
                              .k_norm = k_norm ? &*k_norm : nullptr,
                              .rope = &rope,
                              .offset = positions.offset.value_or(cache.offset()),
                              .tables = positions.tables ? &*positions.tables : nullptr});
  auto output = cache.update_and_attend(heads.queries, heads.keys, heads.values, scale, mask);
  // -> [B,L,H*Dh]; with one position the transpose moves nothing, and leaving it out spares a
  // node of each layer's decode graph (host time a step).
  output = L == 1 ? mx::reshape(output, {B, 1, -1})
                  : mx::reshape(mx::transpose(output, {0, 2, 1, 3}), {B, L, -1});
  return o_proj(output);
}

}  // namespace ominix::generate
