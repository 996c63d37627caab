// ref: funasr 1.4.16 funasr/models/sanm/attention.py, funasr/models/sanm/encoder.py,
//      funasr/models/transformer/embedding.py (see include/ominix/nn/sanm.h).
#include "ominix/nn/sanm.h"

#include "cpu_gemv.h"

#include <cmath>

#include <mlx/ops.h>

namespace ominix::nn {

mx::array sequence_mask(const mx::array& lens, int max_len) {
  return mx::less(mx::expand_dims(mx::arange(max_len, mx::int32), 0),
                  mx::expand_dims(mx::astype(lens, mx::int32), 1));
}

mx::array sinusoidal_position_encoding(int length, int depth) {
  // ref: SinusoidalPositionEncoder.encode: timescales exp(-i * ln(10000) / (depth/2 - 1)).
  const float step = -std::log(10000.0f) / (depth / 2.0f - 1.0f);
  auto inv = mx::exp(mx::multiply(mx::arange(0, depth / 2, mx::float32), mx::array(step)));
  auto pos = mx::arange(1, length + 1, mx::float32);
  auto scaled = mx::multiply(mx::expand_dims(pos, 1), mx::expand_dims(inv, 0));  // [T, depth/2]
  return mx::concatenate({mx::sin(scaled), mx::cos(scaled)}, 1);                 // [T, depth]
}

// On the CPU both products run detail::cpu_matmul_nt (x W^T a head at a time) rather than MLX's
// matmul, which the mlx-cpu wheel hands to a reference BLAS (3/4 of Paraformer-large's CPU time).
mx::array masked_attention(const mx::array& q, const mx::array& k, const mx::array& v,
                           const mx::array& key_mask, float scale) {
  const auto qs = mx::multiply(q, mx::array(scale));
  auto scores = detail::cpu_matmul_nt(qs, k);
  if (!scores) scores = mx::matmul(qs, mx::swapaxes(k, -1, -2));
  *scores = mx::where(key_mask, *scores, mx::array(-INFINITY));
  auto attn = mx::where(key_mask, mx::softmax(*scores, -1), mx::array(0.0f));
  if (auto out = detail::cpu_matmul_nt(attn, mx::swapaxes(v, -1, -2))) return *out;
  return mx::matmul(attn, v);
}

mx::array split_heads(const mx::array& x, int heads) {
  return mx::transpose(mx::reshape(x, {x.shape(0), x.shape(1), heads, -1}), {0, 2, 1, 3});
}

mx::array merge_heads(const mx::array& x) {
  auto t = mx::transpose(x, {0, 2, 1, 3});  // [B, H, L, Dh] -> [B, L, H, Dh]
  return mx::reshape(t, {t.shape(0), t.shape(1), -1});
}

SanmMasks SanmMasks::make(const mx::array& lens, int T) {
  auto valid = sequence_mask(lens, T);  // [B, T]
  return {mx::expand_dims(mx::astype(valid, mx::float32), 2),
          mx::reshape(valid, {valid.shape(0), 1, 1, T})};
}

mx::array Fsmn::operator()(const mx::array& x_in, const mx::array& frames) const {
  auto x = mx::multiply(x_in, frames);
  auto h = mx::pad(x, {{0, 0}, {left, right}, {0, 0}});
  h = mx::conv1d(h, weight, 1, 0, 1, x.shape(2));  // depthwise: one group per channel
  return mx::multiply(mx::add(h, x), frames);
}

Fsmn Fsmn::load(io::WeightMap& w, const std::string& prefix, int dim, int kernel, int shift) {
  auto weight = w.take(prefix + ".weight", {dim, 1, kernel});
  const int left = (kernel - 1) / 2 + (shift > 0 ? shift : 0);
  return {mx::transpose(weight, {0, 2, 1}), left, kernel - 1 - left};  // [D,1,K] -> [D,K,1]
}

mx::array SanmAttention::operator()(const mx::array& x, const SanmMasks& masks) const {
  auto qkv = mx::split(linear_q_k_v(x), 3, -1);
  auto memory = fsmn_block(qkv[2], masks.frames);
  const float scale = 1.0f / std::sqrt(static_cast<float>(qkv[0].shape(-1) / heads));
  auto o = masked_attention(split_heads(qkv[0], heads), split_heads(qkv[1], heads),
                            split_heads(qkv[2], heads), masks.keys, scale);
  return mx::add(linear_out(merge_heads(o)), memory);
}

SanmAttention SanmAttention::load(io::WeightMap& w, const std::string& prefix, const SanmShape& s) {
  return {LinearLayer::load(w, prefix + ".linear_q_k_v", {s.in, 3 * s.size, true}, std::nullopt),
          LinearLayer::load(w, prefix + ".linear_out", {s.size, s.size, true}, std::nullopt),
          Fsmn::load(w, prefix + ".fsmn_block", s.size, s.kernel, s.shift), s.heads};
}

mx::array SanmEncoderLayer::operator()(const mx::array& x, const SanmMasks& masks) const {
  auto a = self_attn(norm1(x), masks);
  auto h = residual ? mx::add(x, a) : a;
  return mx::add(h, w_2(mx::maximum(w_1(norm2(h)), mx::array(0.0f))));
}

SanmEncoderLayer SanmEncoderLayer::load(io::WeightMap& w, const std::string& prefix,
                                        const SanmShape& s) {
  return {LayerNorm::load(w, prefix + ".norm1", s.in, s.eps),
          LayerNorm::load(w, prefix + ".norm2", s.size, s.eps),
          SanmAttention::load(w, prefix + ".self_attn", s),
          LinearLayer::load(w, prefix + ".feed_forward.w_1", {s.size, s.linear_units, true},
                            std::nullopt),
          LinearLayer::load(w, prefix + ".feed_forward.w_2", {s.linear_units, s.size, true},
                            std::nullopt),
          s.in == s.size};
}

}  // namespace ominix::nn
