// librosa/Whisper log mel spectrogram on MLX ops. ref: librosa 0.11 librosa/filters.py (mel),
// librosa/core/convert.py (hz_to_mel, mel_to_hz, mel_frequencies, fft_frequencies);
// openai/whisper whisper/audio.py (log_mel_spectrogram: torch.stft centred with reflect padding,
// stft[..., :-1], clamp(min=1e-10).log10(), max(x, x.max() - 8), (x + 4) / 4).
#include "ominix/audio/log_mel.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include <mlx/fft.h>
#include <mlx/ops.h>

#include "frames.h"
#include "ominix/base/error.h"

namespace ominix::audio {

namespace {

// Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above.
constexpr double kSlaneyStep = 200.0 / 3;
constexpr double kSlaneyLogHz = 1000.0;
constexpr double kSlaneyLogMel = kSlaneyLogHz / kSlaneyStep;
const double kSlaneyLogStep = std::log(6.4) / 27.0;

double hz_to_mel(double f, MelScale scale) {
  if (scale == MelScale::htk) return 2595.0 * std::log10(1.0 + f / 700.0);
  if (f >= kSlaneyLogHz) return kSlaneyLogMel + std::log(f / kSlaneyLogHz) / kSlaneyLogStep;
  return f / kSlaneyStep;
}

double mel_to_hz(double m, MelScale scale) {
  if (scale == MelScale::htk) return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
  if (m >= kSlaneyLogMel) return kSlaneyLogHz * std::exp(kSlaneyLogStep * (m - kSlaneyLogMel));
  return kSlaneyStep * m;
}

int stft_frames(int n, const LogMelOptions& o) {
  if (n <= 0) return 0;
  const int padded = o.center ? n + 2 * (o.n_fft / 2) : n;
  int frames = padded < o.n_fft ? 0 : 1 + (padded - o.n_fft) / o.hop_length;
  if (o.drop_last_frame) frames = std::max(0, frames - 1);
  return frames;
}

void validate(const LogMelOptions& o) {
  if (o.sample_rate <= 0 || o.n_fft < 2 || o.hop_length < 1 || o.n_mels < 1) {
    fail<InvalidArgument>(
        "log_mel: need sample_rate > 0, n_fft >= 2, hop_length >= 1, n_mels >= 1; got {}, {}, "
        "{}, {}",
        o.sample_rate, o.n_fft, o.hop_length, o.n_mels);
  }
  if (!(o.power > 0)) fail<InvalidArgument>("log_mel: power must be positive, got {}", o.power);
  if (o.log && !(o.log_floor > 0)) {
    fail<InvalidArgument>("log_mel: log_floor must be positive, got {}", o.log_floor);
  }
  if (o.whisper_normalize && !o.log) {
    fail<InvalidArgument>("log_mel: whisper_normalize needs log = true");
  }
}

}  // namespace

mx::array mel_filters(const MelFilterOptions& o) {
  if (o.sample_rate <= 0 || o.n_fft < 2 || o.n_mels < 1) {
    fail<InvalidArgument>(
        "mel_filters: need sample_rate > 0, n_fft >= 2, n_mels >= 1; got {}, {}, {}", o.sample_rate,
        o.n_fft, o.n_mels);
  }
  const double fmax = o.f_max ? *o.f_max : o.sample_rate / 2.0;
  if (!(o.f_min >= 0 && fmax > o.f_min)) {
    fail<InvalidArgument>("mel_filters: need 0 <= f_min < f_max; got {}, {}", o.f_min, fmax);
  }
  const int bins = o.n_fft / 2 + 1;
  std::vector<double> fft_freqs(bins);
  for (int k = 0; k < bins; ++k) fft_freqs[k] = k / (o.n_fft * (1.0 / o.sample_rate));  // rfftfreq

  // n_mels + 2 points evenly spaced in mel (np.linspace: start + i * step, the last exact).
  const int points = o.n_mels + 2;
  const double lo = hz_to_mel(o.f_min, o.scale), hi = hz_to_mel(fmax, o.scale);
  const double step = (hi - lo) / (points - 1);
  std::vector<double> mel_f(points);
  for (int i = 0; i < points; ++i) {
    mel_f[i] = mel_to_hz(i == points - 1 ? hi : lo + i * step, o.scale);
  }

  std::vector<float> weights(static_cast<std::size_t>(o.n_mels) * bins);
  for (int m = 0; m < o.n_mels; ++m) {
    const double lower_width = mel_f[m + 1] - mel_f[m], upper_width = mel_f[m + 2] - mel_f[m + 1];
    const double enorm = o.norm == MelNorm::slaney ? 2.0 / (mel_f[m + 2] - mel_f[m]) : 1.0;
    for (int k = 0; k < bins; ++k) {
      const double lower = -(mel_f[m] - fft_freqs[k]) / lower_width;
      const double upper = (mel_f[m + 2] - fft_freqs[k]) / upper_width;
      weights[static_cast<std::size_t>(m) * bins + k] =
          static_cast<float>(std::max(0.0, std::min(lower, upper)) * enorm);
    }
  }
  return mx::array(weights.data(), {o.n_mels, bins}, mx::float32);
}

LogMelOptions whisper_log_mel_options(int n_mels) {
  return {.sample_rate = 16000,
          .n_fft = 400,
          .hop_length = 160,
          .n_mels = n_mels,
          .drop_last_frame = true,
          .whisper_normalize = true};
}

int log_mel_num_frames(int num_samples, const LogMelOptions& options) {
  validate(options);
  return stft_frames(num_samples, options);
}

mx::array log_mel(const mx::array& samples, const LogMelOptions& o) {
  validate(o);
  auto filters = mel_filters({.sample_rate = o.sample_rate,
                              .n_fft = o.n_fft,
                              .n_mels = o.n_mels,
                              .f_min = o.f_min,
                              .f_max = o.f_max,
                              .scale = o.mel_scale,
                              .norm = o.mel_norm});
  auto x = detail::mono_samples(samples, "log_mel");
  const int N = x.shape(0);
  const int F = stft_frames(N, o);
  if (F == 0) return mx::zeros({0, o.n_mels}, mx::float32);

  // Frames [F, n_fft]; centred frames start n_fft/2 before their sample.
  const int offset = o.center ? -(o.n_fft / 2) : 0;
  auto pos = detail::frame_positions(F, o.n_fft, o.hop_length, offset);
  mx::array frames = [&] {
    if (!o.center) return mx::take(x, pos);
    if (o.pad_mode == PadMode::reflect) {
      return mx::take(x, detail::reflect_without_edge(pos, N, offset));
    }
    auto padded = mx::pad(x, std::pair<int, int>{o.n_fft / 2, o.n_fft / 2});  // zeros
    return mx::take(padded, pos - offset);
  }();

  // Periodic Hann window (torch.hann_window(n_fft), scipy get_window('hann', n_fft, fftbins=True)).
  std::vector<float> hann(o.n_fft);
  for (int i = 0; i < o.n_fft; ++i) {
    hann[i] = static_cast<float>(0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / o.n_fft));
  }
  frames = frames * mx::array(hann.data(), {1, o.n_fft}, mx::float32);

  auto spectrum = mx::fft::rfft(frames, o.n_fft, 1);  // [F, n_fft/2 + 1]
  auto re = mx::real(spectrum), im = mx::imag(spectrum);
  auto power = re * re + im * im;
  if (o.power == 1.0f) {
    power = mx::sqrt(power);
  } else if (o.power != 2.0f) {
    power = mx::power(power, mx::array(o.power / 2.0f));
  }
  auto mel = mx::matmul(power, mx::transpose(filters));  // [F, n_mels]
  if (!o.log) return mel;
  auto log_spec = mx::log10(mx::maximum(mel, mx::array(o.log_floor)));
  if (o.whisper_normalize) {
    log_spec = mx::maximum(log_spec, mx::max(log_spec) - 8.0f);
    log_spec = (log_spec + 4.0f) / 4.0f;
  }
  return log_spec;
}

}  // namespace ominix::audio
