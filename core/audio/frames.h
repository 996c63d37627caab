// Framing helpers shared by fbank and log_mel: gather indices built with MLX ops, so framing runs
// on the default device like the rest of the feature pipeline.
#pragma once

#include <string>

#include <mlx/array.h>

namespace ominix::audio::detail {

namespace mx = mlx::core;

/// Positions [F, W] (int32): offset + f * shift + w.
mx::array frame_positions(int num_frames, int width, int shift, int offset);

/// Kaldi's reflection (the edge sample repeated: -1 -> 0, N -> N-1), applied as often as needed:
/// maps any position into [0, n). n >= 1.
mx::array reflect_with_edge(const mx::array& positions, int n, int min_position);

/// numpy/torch 'reflect' (the edge not repeated: -1 -> 1, N -> N-2), as often as needed. n >= 1.
mx::array reflect_without_edge(const mx::array& positions, int n, int min_position);

/// A float32 [T] view of [T] or [1, T] samples; InvalidArgument naming `what` otherwise.
mx::array mono_samples(const mx::array& samples, const std::string& what);

}  // namespace ominix::audio::detail
