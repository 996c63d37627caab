// Kaldi-compatible log mel filterbank, as torchaudio.compliance.kaldi.fbank (and
// kaldi-native-fbank) compute it, on MLX ops: it runs on whichever device is the default.
// ref: kaldi src/feat/feature-window.cc, feature-fbank.cc, mel-computations.cc;
//      torchaudio/compliance/kaldi.py (fbank, _get_window, get_mel_banks).
#pragma once

#include <cstdint>

#include <mlx/array.h>

namespace ominix::audio {

namespace mx = mlx::core;

enum class KaldiWindow { povey, hamming, hanning, rectangular, blackman };

/// torchaudio.compliance.kaldi.fbank's arguments and defaults, except dither (0 here).
struct FbankOptions {
  float sample_rate = 16000.0f;
  float frame_length_ms = 25.0f;  ///< window size = int(sample_rate * ms / 1000) samples
  float frame_shift_ms = 10.0f;   ///< shift = int(sample_rate * ms / 1000) samples
  bool snip_edges = true;  ///< false: frames centred on multiples of the shift, edges reflected
  float dither = 0.0f;     ///< Gaussian noise scale; 0 keeps the output deterministic
  std::uint64_t dither_seed = 0;  ///< MLX random key for the dither
  float preemphasis_coefficient = 0.97f;
  bool remove_dc_offset = true;
  KaldiWindow window_type = KaldiWindow::povey;
  float blackman_coeff = 0.42f;
  bool round_to_power_of_two = true;  ///< FFT size: next power of two of the window size
  int num_mel_bins = 23;
  float low_freq = 20.0f;
  float high_freq = 0.0f;   ///< <= 0: offset from the Nyquist frequency
  bool use_energy = false;  ///< prepend (or, htk_compat, append) the log frame energy
  bool raw_energy = true;   ///< energy before pre-emphasis and windowing
  float energy_floor = 1.0f;
  bool htk_compat = false;
  bool use_log_fbank = true;  ///< log(max(x, FLT_EPSILON)); false gives the mel energies
  bool use_power = true;      ///< power spectrum; false: magnitude
  bool subtract_mean = false;
  float input_scale = 1.0f;  ///< samples are multiplied by this first (FunASR: 32768)
};

/// Frames that fbank gives for `num_samples` samples (Kaldi's NumFrames).
int fbank_num_frames(int num_samples, const FbankOptions& options = {});

/// Log mel filterbank of float samples [T] (or [1, T]) -> float32 [frames, num_mel_bins (+1 with
/// use_energy)]. Too few samples for one frame give [0, bins]. InvalidArgument for bad options.
mx::array fbank(const mx::array& samples, const FbankOptions& options = {});

/// Kaldi's triangular mel banks on the HTK mel scale (1127 ln(1 + f/700)):
/// float32 [num_bins, fft_size / 2 + 1], the Nyquist column zero (torchaudio's layout).
mx::array kaldi_mel_banks(int num_bins, int fft_size, float sample_rate, float low_freq,
                          float high_freq);

/// Kaldi's window of `size` samples, float32 [size].
mx::array kaldi_window(KaldiWindow type, int size, float blackman_coeff = 0.42f);

}  // namespace ominix::audio
