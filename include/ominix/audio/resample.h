// Sample-rate conversion with libsoxr, as the `soxr` Python package calls it (soxr.resample).
#pragma once

#include <mlx/array.h>

namespace ominix::audio {

namespace mx = mlx::core;

/// soxr's quality recipes: SOXR_QQ, SOXR_LQ, SOXR_MQ, SOXR_HQ (20-bit), SOXR_VHQ (28-bit).
enum class ResampleQuality { quick, low, medium, high, very_high };

/// Resamples float32 samples [T] or [C, T] (each channel alone) from `from_rate` to `to_rate` Hz;
/// gives what soxr.resample(x, from_rate, to_rate, quality) gives: floor(T * to / from) + 1 frames
/// at most, as many as soxr delivers after its flush. Equal rates return the input unchanged.
/// InvalidArgument for non-positive rates or more than 2 dimensions.
mx::array resample(const mx::array& samples, int from_rate, int to_rate,
                   ResampleQuality quality = ResampleQuality::high);

}  // namespace ominix::audio
