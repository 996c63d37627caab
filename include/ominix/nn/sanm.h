// SAN-M: multi-head self-attention plus an FSMN memory block (a depthwise convolution over time),
// the encoder layer of FunASR's speech models (Paraformer's SANMEncoder, SenseVoice's
// SenseVoiceEncoderSmall), and the masking and positional helpers those encoders share.
// ref: funasr 1.4.16 funasr/models/sanm/attention.py (MultiHeadedAttentionSANM),
//      funasr/models/sanm/encoder.py (EncoderLayerSANM), funasr/models/sense_voice/model.py,
//      funasr/models/transformer/embedding.py (SinusoidalPositionEncoder).
#pragma once

#include <string>

#include <mlx/array.h>

#include "ominix/io/weights.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/norm.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// Valid positions of padded sequences: lens int [B] -> bool [B, max_len] (position < length).
mx::array sequence_mask(const mx::array& lens, int max_len);

/// FunASR's SinusoidalPositionEncoder for positions 1..length: float32 [length, depth], the sines
/// of the first depth/2 frequencies then their cosines.
mx::array sinusoidal_position_encoding(int length, int depth);

/// Scaled dot-product attention with masked keys excluded (weight 0, not merely -inf scores, so a
/// fully masked row gives zeros as FunASR's masked_fill does). q [B,H,L,Dh], k and v [B,H,S,Dh],
/// key_mask bool broadcastable to [B,1,L,S] -> [B,H,L,Dh].
mx::array masked_attention(const mx::array& q, const mx::array& k, const mx::array& v,
                           const mx::array& key_mask, float scale);

/// [B, L, H*Dh] -> [B, H, L, Dh].
mx::array split_heads(const mx::array& x, int heads);
/// [B, H, L, Dh] -> [B, L, H*Dh].
mx::array merge_heads(const mx::array& x);

/// The two masks a SAN-M layer takes, built from lengths int [B] over T frames.
struct SanmMasks {
  mx::array frames;  ///< float32 [B, T, 1]: 1 on valid frames (zeroes the FSMN's padding)
  mx::array keys;    ///< bool [B, 1, 1, T]: valid keys
  static SanmMasks make(const mx::array& lens, int T);
};

/// FSMN memory block: masked x plus its depthwise convolution over time (kernel K, padded
/// (K-1)/2 + shift on the left), masked again. x [B, T, D], frames mask [B, T, 1].
struct Fsmn {
  mx::array weight;  ///< [D, K, 1] (MLX's grouped conv1d layout)
  int left = 0, right = 0;
  mx::array operator()(const mx::array& x, const mx::array& frames) const;
  /// Binds `<prefix>.weight` [D, 1, K] (PyTorch's depthwise Conv1d layout).
  static Fsmn load(io::WeightMap& w, const std::string& prefix, int dim, int kernel, int shift);
};

/// The sizes of a SAN-M layer: input width `in` (the first layer takes the features), model width
/// `size`, attention heads, feed-forward width, FSMN kernel and shift, the LayerNorm epsilon.
struct SanmShape {
  int in = 0, size = 0, heads = 4, linear_units = 2048, kernel = 11, shift = 0;
  float eps = 1e-12f;
};

/// MultiHeadedAttentionSANM: attention over linear_q_k_v's q|k|v, plus the FSMN memory of v.
struct SanmAttention {
  LinearLayer linear_q_k_v, linear_out;
  Fsmn fsmn_block;
  int heads = 4;
  /// x [B, T, in] -> [B, T, size].
  mx::array operator()(const mx::array& x, const SanmMasks& masks) const;
  static SanmAttention load(io::WeightMap& w, const std::string& prefix, const SanmShape& shape);
};

/// EncoderLayerSANM with normalize_before: x + self_attn(norm1(x)) (no residual when in != size),
/// then h + w_2(relu(w_1(norm2(h)))).
struct SanmEncoderLayer {
  LayerNorm norm1, norm2;
  SanmAttention self_attn;
  LinearLayer w_1, w_2;  ///< feed_forward.w_1, feed_forward.w_2
  bool residual = true;
  /// x [B, T, in] -> [B, T, size].
  mx::array operator()(const mx::array& x, const SanmMasks& masks) const;
  /// Binds `<prefix>.norm1`, `.norm2`, `.self_attn.*` and `.feed_forward.w_1` / `.w_2`.
  static SanmEncoderLayer load(io::WeightMap& w, const std::string& prefix, const SanmShape& shape);
};

}  // namespace ominix::nn
