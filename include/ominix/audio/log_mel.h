// Log mel spectrogram as librosa (feature.melspectrogram + filters.mel) and Whisper compute it,
// on MLX ops.
// ref: librosa/filters.py (mel, hz_to_mel, mel_to_hz) and openai/whisper whisper/audio.py
//      (log_mel_spectrogram).
#pragma once

#include <optional>

#include <mlx/array.h>

namespace ominix::audio {

namespace mx = mlx::core;

enum class MelScale { slaney, htk };  ///< librosa htk=False / htk=True
enum class MelNorm { none, slaney };  ///< librosa norm=None / norm='slaney' (area normalisation)
enum class PadMode { reflect, constant };

/// librosa.filters.mel's arguments and defaults.
struct MelFilterOptions {
  int sample_rate = 16000;
  int n_fft = 400;
  int n_mels = 128;
  float f_min = 0.0f;
  std::optional<float> f_max;  ///< default sample_rate / 2
  MelScale scale = MelScale::slaney;
  MelNorm norm = MelNorm::slaney;
};

/// librosa.filters.mel: float32 [n_mels, n_fft / 2 + 1] (computed in double, rounded once).
mx::array mel_filters(const MelFilterOptions& options);

struct LogMelOptions {
  int sample_rate = 16000;
  int n_fft = 400;
  int hop_length = 160;
  int n_mels = 80;
  float f_min = 0.0f;
  std::optional<float> f_max;  ///< default sample_rate / 2
  MelScale mel_scale = MelScale::slaney;
  MelNorm mel_norm = MelNorm::slaney;
  bool center = true;                   ///< pad n_fft / 2 on both sides
  PadMode pad_mode = PadMode::reflect;  ///< torch.stft's default (librosa >= 0.10: constant)
  float power = 2.0f;                   ///< |STFT|^power
  bool log = true;                      ///< log10(max(x, log_floor)); false: mel power
  float log_floor = 1e-10f;
  bool drop_last_frame = false;    ///< Whisper drops the STFT's last frame
  bool whisper_normalize = false;  ///< x = max(x, max(x) - 8); (x + 4) / 4 (needs log)
};

/// Options for Whisper's log_mel_spectrogram (n_fft 400, hop 160, 16 kHz, last frame dropped,
/// the 8 dB (x+4)/4 normalisation).
LogMelOptions whisper_log_mel_options(int n_mels = 80);

/// Frames of the STFT for `num_samples` samples (after drop_last_frame).
int log_mel_num_frames(int num_samples, const LogMelOptions& options = {});

/// Log mel spectrogram of float samples [T] (or [1, T]) -> float32 [frames, n_mels] (Whisper's
/// layout is the transpose). Periodic Hann window of n_fft. No samples give [0, n_mels].
mx::array log_mel(const mx::array& samples, const LogMelOptions& options = {});

}  // namespace ominix::audio
