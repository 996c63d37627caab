// Kaldi fbank on MLX ops. ref: torchaudio/compliance/kaldi.py (v2.x: fbank, _get_window,
// _get_strided, get_mel_banks) and kaldi src/feat/feature-window.cc (ExtractWindow's repeated
// reflection, NumFrames).
#include "ominix/audio/fbank.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numbers>
#include <optional>
#include <vector>

#include <mlx/fft.h>
#include <mlx/ops.h>
#include <mlx/random.h>

#include "frames.h"
#include "ominix/base/error.h"

namespace ominix::audio {

namespace {

struct Geometry {
  int window = 0;  // samples per frame
  int shift = 0;
  int padded = 0;  // FFT size
};

int next_power_of_two(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

Geometry geometry(const FbankOptions& o) {
  if (!(o.sample_rate > 0))
    fail<InvalidArgument>("fbank: sample_rate must be positive, got {}", o.sample_rate);
  Geometry g;
  // ref: kaldi.py: int(sample_frequency * frame_length * 0.001)
  g.window = static_cast<int>(double(o.sample_rate) * double(o.frame_length_ms) * 0.001);
  g.shift = static_cast<int>(double(o.sample_rate) * double(o.frame_shift_ms) * 0.001);
  if (g.window < 2) {
    fail<InvalidArgument>(
        "fbank: frame_length_ms {} at {} Hz gives a window of {} samples (needs >= 2)",
        o.frame_length_ms, o.sample_rate, g.window);
  }
  if (g.shift < 1) {
    fail<InvalidArgument>(
        "fbank: frame_shift_ms {} at {} Hz gives a shift of {} samples (needs >= 1)",
        o.frame_shift_ms, o.sample_rate, g.shift);
  }
  g.padded = o.round_to_power_of_two ? next_power_of_two(g.window) : g.window;
  if (g.padded % 2 != 0) {
    fail<InvalidArgument>(
        "fbank: the FFT size {} must be even (window of {} samples, "
        "round_to_power_of_two off)",
        g.padded, g.window);
  }
  return g;
}

void validate(const FbankOptions& o) {
  if (!(o.preemphasis_coefficient >= 0 && o.preemphasis_coefficient <= 1)) {
    fail<InvalidArgument>("fbank: preemphasis_coefficient must be in [0, 1], got {}",
                          o.preemphasis_coefficient);
  }
  if (!(o.dither >= 0)) fail<InvalidArgument>("fbank: dither must be >= 0, got {}", o.dither);
  if (!(o.energy_floor >= 0)) {
    fail<InvalidArgument>("fbank: energy_floor must be >= 0, got {}", o.energy_floor);
  }
  if (!std::isfinite(o.input_scale)) {
    fail<InvalidArgument>("fbank: input_scale must be finite, got {}", o.input_scale);
  }
}

double mel_scale(double f) {
  return 1127.0 * std::log(1.0 + f / 700.0);
}

}  // namespace

int fbank_num_frames(int num_samples, const FbankOptions& options) {
  auto g = geometry(options);
  if (num_samples <= 0) return 0;
  if (options.snip_edges)
    return num_samples < g.window ? 0 : 1 + (num_samples - g.window) / g.shift;
  return (num_samples + g.shift / 2) / g.shift;
}

mx::array kaldi_window(KaldiWindow type, int size, float blackman_coeff) {
  if (size < 2) fail<InvalidArgument>("kaldi_window: size must be >= 2, got {}", size);
  const double a = 2 * std::numbers::pi / (size - 1);
  std::vector<float> w(size);
  for (int i = 0; i < size; ++i) {
    double v = 1.0;
    switch (type) {
      case KaldiWindow::hanning:
        v = 0.5 - 0.5 * std::cos(a * i);
        break;
      case KaldiWindow::hamming:
        v = 0.54 - 0.46 * std::cos(a * i);
        break;
      case KaldiWindow::povey:
        v = std::pow(0.5 - 0.5 * std::cos(a * i), 0.85);
        break;
      case KaldiWindow::rectangular:
        v = 1.0;
        break;
      case KaldiWindow::blackman:
        v = blackman_coeff - 0.5 * std::cos(a * i) + (0.5 - blackman_coeff) * std::cos(2 * a * i);
        break;
    }
    w[i] = static_cast<float>(v);
  }
  return mx::array(w.data(), {size}, mx::float32);
}

mx::array kaldi_mel_banks(int num_bins, int fft_size, float sample_rate, float low_freq,
                          float high_freq) {
  const double nyquist = 0.5 * sample_rate;
  double high = high_freq <= 0 ? high_freq + nyquist : high_freq;
  if (num_bins < 3) fail<InvalidArgument>("fbank: num_mel_bins must be >= 3, got {}", num_bins);
  if (fft_size < 2 || fft_size % 2 != 0) {
    fail<InvalidArgument>("fbank: FFT size must be even and >= 2, got {}", fft_size);
  }
  if (!(low_freq >= 0 && low_freq < nyquist && high > 0 && high <= nyquist && high > low_freq)) {
    fail<InvalidArgument>(
        "fbank: need 0 <= low_freq < high_freq <= Nyquist ({} Hz); got low_freq {}, high_freq {} "
        "(-> {})",
        nyquist, low_freq, high_freq, high);
  }
  const int num_fft_bins = fft_size / 2;
  const double bin_width = double(sample_rate) / fft_size;
  const double mel_low = mel_scale(low_freq), mel_high = mel_scale(high);
  const double delta = (mel_high - mel_low) / (num_bins + 1);
  // [num_bins, num_fft_bins + 1]: the Nyquist column stays zero (torchaudio pads it on).
  std::vector<float> banks(static_cast<std::size_t>(num_bins) * (num_fft_bins + 1), 0.0f);
  for (int b = 0; b < num_bins; ++b) {
    const double left = mel_low + b * delta, center = left + delta, right = center + delta;
    for (int k = 0; k < num_fft_bins; ++k) {
      const double mel = mel_scale(bin_width * k);
      const double up = (mel - left) / (center - left), down = (right - mel) / (right - center);
      banks[static_cast<std::size_t>(b) * (num_fft_bins + 1) + k] =
          static_cast<float>(std::max(0.0, std::min(up, down)));
    }
  }
  return mx::array(banks.data(), {num_bins, num_fft_bins + 1}, mx::float32);
}

mx::array fbank(const mx::array& samples, const FbankOptions& o) {
  validate(o);
  const auto g = geometry(o);
  const int bins = o.num_mel_bins;
  auto banks = kaldi_mel_banks(bins, g.padded, o.sample_rate, o.low_freq, o.high_freq);
  auto x = detail::mono_samples(samples, "fbank");
  const int N = x.shape(0);
  const int F = fbank_num_frames(N, o);
  const int dims = bins + (o.use_energy ? 1 : 0);
  if (F == 0) return mx::zeros({0, dims}, mx::float32);
  if (o.input_scale != 1.0f) x = x * o.input_scale;

  // Frames [F, W]. snip_edges=false centres frame f on f * shift + shift/2 and reflects the edges.
  mx::array frames = [&] {
    if (o.snip_edges) return mx::take(x, detail::frame_positions(F, g.window, g.shift, 0));
    const int offset = g.shift / 2 - g.window / 2;
    auto pos = detail::frame_positions(F, g.window, g.shift, offset);
    return mx::take(x, detail::reflect_with_edge(pos, N, offset));
  }();
  if (o.dither != 0.0f) {
    frames = frames + mx::random::normal({F, g.window}, mx::float32, 0.0f, o.dither,
                                         mx::random::key(o.dither_seed));
  }
  if (o.remove_dc_offset) frames = frames - mx::mean(frames, 1, /*keepdims=*/true);

  auto log_energy = [&](const mx::array& fr) {
    auto e = mx::log(mx::maximum(mx::sum(mx::square(fr), 1), mx::array(FLT_EPSILON)));  // [F]
    if (o.energy_floor > 0) e = mx::maximum(e, mx::array(std::log(o.energy_floor)));
    return e;
  };
  std::optional<mx::array> energy;
  if (o.use_energy && o.raw_energy) energy = log_energy(frames);

  if (o.preemphasis_coefficient != 0.0f) {
    // x[i] -= c * x[i-1], x[0] -= c * x[0]  (ref: kaldi.py pads with "replicate")
    auto previous = mx::concatenate(
        {mx::slice(frames, {0, 0}, {F, 1}), mx::slice(frames, {0, 0}, {F, g.window - 1})}, 1);
    frames = frames - o.preemphasis_coefficient * previous;
  }
  frames =
      frames * mx::reshape(kaldi_window(o.window_type, g.window, o.blackman_coeff), {1, g.window});
  if (o.use_energy && !o.raw_energy) energy = log_energy(frames);

  auto spectrum = mx::fft::rfft(frames, g.padded, 1);  // [F, padded/2 + 1], zero-padded frames
  auto re = mx::real(spectrum), im = mx::imag(spectrum);
  auto power = re * re + im * im;
  if (!o.use_power) power = mx::sqrt(power);
  auto mel = mx::matmul(power, mx::transpose(banks));  // [F, bins]
  if (o.use_log_fbank) mel = mx::log(mx::maximum(mel, mx::array(FLT_EPSILON)));
  if (energy) {
    auto e = mx::reshape(*energy, {F, 1});
    mel = o.htk_compat ? mx::concatenate({mel, e}, 1) : mx::concatenate({e, mel}, 1);
  }
  if (o.subtract_mean) mel = mel - mx::mean(mel, 0, /*keepdims=*/true);
  return mel;
}

}  // namespace ominix::audio
