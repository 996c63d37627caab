// Rotary position embeddings: default, linear, llama3, yarn and dynamic-NTK scaling, half-split
// or traditional (interleaved) pairs, partial rotary dims, positions from an offset.
// Frequencies follow transformers' modeling_rope_utils; rotation runs in mlx::core::fast::rope.
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

}  // namespace ominix::nn
