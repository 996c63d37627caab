// Rotary position embeddings: default, linear, llama3, yarn and dynamic-NTK scaling, half-split
// or traditional (interleaved) pairs, partial rotary dims, positions from an offset.
// Frequencies follow transformers' modeling_rope_utils; rotation runs in mlx::core::fast::rope.
// Also rotation by explicit per-token tables: multimodal RoPE (M-RoPE), whose rotary pairs are
// split into sections each turned by its own position axis (time, height, width).
#pragma once

#include <optional>
#include <vector>

#include <mlx/array.h>

#include "ominix/io/config.h"

namespace ominix::nn {

namespace mx = mlx::core;

class RoPE {
 public:
  /// `head_dim` is the full head size; the rotated part is head_dim * partial_rotary_factor.
  RoPE(const io::RopeConfig& config, int head_dim);

  /// x [B, H, L, D] -> x rotated at positions offset .. offset+L-1 (the rest of D passes through).
  mx::array operator()(const mx::array& x, int offset = 0) const;

  /// Inverse frequencies [dims/2] for a sequence that reaches `seq_len` positions (only the dynamic
  /// type depends on it), in float32 as transformers computes them.
  std::vector<float> inv_freq(int seq_len) const;
  /// Factor on cos/sin (yarn's attention factor; 1 otherwise).
  float attention_scaling() const { return attention_scaling_; }
  int dims() const { return dims_; }
  /// The periods (1 / inv_freq) fast::rope takes, when they do not depend on the sequence length
  /// (every type but dynamic).
  const std::optional<mx::array>& fixed_freqs() const { return freqs_; }
  bool traditional() const { return config_.traditional; }

 private:
  mx::array freqs_for(int seq_len) const;

  io::RopeConfig config_;
  int dims_;
  float attention_scaling_ = 1.0f;
  std::optional<mx::array> freqs_;  ///< 1 / inv_freq, cached when independent of seq_len
};

/// Per-token rotation tables in transformers' half-split layout (cat(freqs, freqs)): cos and sin
/// [B, L, dims] (float32), applied to x [B, H, L, D] by apply_rotary.
struct RotaryTables {
  mx::array cos, sin;
};

/// How M-RoPE assigns rotary pairs to position axes.
struct MRopeOptions {
  /// Pairs per axis, in order (Qwen2-VL/Qwen2.5-VL: mrope_section [16, 24, 24] for time, height,
  /// width); they sum to dims / 2.
  std::vector<int> sections;
  /// false: contiguous chunks (pair j belongs to the axis whose section holds j; Qwen2-VL);
  /// true: interleaved (Qwen3-VL's mrope_interleaved: pair j belongs to axis j % 3 while that
  /// axis has pairs left, the rest to axis 0).
  bool interleaved = false;
};

/// M-RoPE tables for positions int [A, B, L] (A position axes) and inverse frequencies [dims/2]:
/// pair j turns by positions[axis(j)] * inv_freq[j]. With all axes equal this is plain RoPE.
/// ref: transformers 5.24 modeling_qwen2_5_vl.py Qwen2_5_VLRotaryEmbedding.forward and
/// recomposition_frequencies.
RotaryTables mrope_tables(const mx::array& positions, const std::vector<float>& inv_freq,
                          const MRopeOptions& options);

/// x [B, H, L, D] rotated by tables [B, L, dims] (half-split pairs over the first dims of D; the
/// rest passes through): x * cos + rotate_half(x) * sin, in float32, returned in x's dtype.
mx::array apply_rotary(const mx::array& x, const RotaryTables& tables);

/// Where a forward's tokens sit for the rotary embedding: by default at the cache's offset
/// onwards; `offset` moves them (M-RoPE after the prompt: cache offset + rope delta); `tables`
/// rotates each token by its own table (M-RoPE's prompt) instead.
struct RotaryPositions {
  std::optional<int> offset;
  std::optional<RotaryTables> tables;
};

}  // namespace ominix::nn
