// Audio files in and out: WAV, FLAC and Ogg/Vorbis decoded through libsndfile to float32, WAV
// written atomically (a temporary file renamed into place). Errors name the file.
#pragma once

#include <filesystem>
#include <optional>

#include <mlx/array.h>

#include "ominix/audio/resample.h"

namespace ominix::audio {

namespace mx = mlx::core;

/// Decoded audio. Integer PCM is scaled to [-1, 1) as libsndfile does (x / 2^(bits-1)); float
/// files keep their values.
struct Audio {
  mx::array samples;    ///< float32 [T] (mono) or [C, T] (channels kept)
  int sample_rate = 0;  ///< of `samples` (the file's, or LoadOptions::sample_rate)
  int channels = 0;     ///< channels in the file, whether mixed down or kept
  /// Frames: samples.shape(-1).
  int frames() const { return samples.shape(-1); }
};

struct LoadOptions {
  bool mono = true;                ///< mix down to [T] by the mean of the channels; else [C, T]
  std::optional<int> sample_rate;  ///< resample to this rate (soxr) when the file's differs
  ResampleQuality quality = ResampleQuality::high;  ///< for that resampling
  bool allow_truncated = false;   ///< read what a truncated file holds instead of throwing
  bool allow_non_finite = false;  ///< pass NaN/Inf samples through instead of throwing
};

/// Decodes a WAV (16/24/32-bit PCM, float), FLAC or Ogg/Vorbis file (format from its content).
/// IoError: missing or unreadable; FormatError: empty, not audio, malformed, truncated (the header
/// declares more frames than the file holds), NaN/Inf samples. A valid file with no frames gives
/// an empty [0] (or [C, 0]) array.
Audio load_audio(const std::filesystem::path& path, const LoadOptions& options = {});

/// The name the speech API uses; identical to load_audio (any format libsndfile reads).
inline Audio load_wav(const std::filesystem::path& path, const LoadOptions& options = {}) {
  return load_audio(path, options);
}

enum class WavFormat { pcm16, float32 };

struct SaveOptions {
  WavFormat format = WavFormat::pcm16;
};

/// Writes float samples [T] or [C, T] as WAV. pcm16 stores round(x * 32768) clipped to
/// [-32768, 32767], so that load_audio gives back x exactly for x = k / 32768. Writes a temporary
/// file beside `path` and renames it, so `path` is never half-written. InvalidArgument for a
/// non-positive rate, a bad shape or NaN/Inf samples; IoError when the file cannot be written.
void save_wav(const std::filesystem::path& path, const mx::array& samples, int sample_rate,
              const SaveOptions& options = {});

}  // namespace ominix::audio
