// Resampling through libsoxr, called as python-soxr 1.1's resample() calls it.
// ref: dofuuz/python-soxr src/soxr_ext.cpp (csoxr_split_ch, 599e687): soxr_create with float32
// I/O and soxr_quality_spec(q, 0); input fed in blocks of max(1000, 48000 * in / out) frames;
// then a flush; output capped at floor(T * out / in) + 1 frames.
#include "ominix/audio/resample.h"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include <mlx/ops.h>
#include <soxr.h>

#include "ominix/base/error.h"

namespace ominix::audio {

namespace {

struct SoxrDeleter {
  void operator()(soxr* s) const { soxr_delete(s); }
};
using SoxrPtr = std::unique_ptr<soxr, SoxrDeleter>;

unsigned long soxr_recipe(ResampleQuality q) {
  switch (q) {
    case ResampleQuality::quick:
      return SOXR_QQ;
    case ResampleQuality::low:
      return SOXR_LQ;
    case ResampleQuality::medium:
      return SOXR_MQ;
    case ResampleQuality::high:
      return SOXR_HQ;
    case ResampleQuality::very_high:
      return SOXR_VHQ;
  }
  fail<InvalidArgument>("resample: unknown quality {}", static_cast<int>(q));
}

std::vector<float> resample_channel(const float* x, std::size_t ilen, double in_rate,
                                    double out_rate, ResampleQuality quality) {
  const auto olen = static_cast<std::size_t>(static_cast<double>(ilen) * out_rate / in_rate) + 1;
  const auto block = static_cast<std::size_t>(std::max(1000.0, 48000.0 * in_rate / out_rate));
  soxr_error_t err = nullptr;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(soxr_recipe(quality), 0);
  SoxrPtr s(soxr_create(in_rate, out_rate, 1, &err, &io, &q, nullptr));
  if (err || !s)
    fail<InvalidArgument>("resample {} -> {} Hz: soxr: {}", in_rate, out_rate,
                          err ? err : "cannot create");

  std::vector<float> y(olen, 0.0f);
  std::size_t pos = 0, done = 0;
  for (std::size_t i = 0; i < ilen; i += block) {
    err = soxr_process(s.get(), x + i, std::min(block, ilen - i), nullptr, y.data() + pos,
                       olen - pos, &done);
    if (err) fail<Error>("resample {} -> {} Hz: soxr: {}", in_rate, out_rate, err);
    pos += done;
  }
  err = soxr_process(s.get(), nullptr, 0, nullptr, y.data() + pos, olen - pos, &done);
  if (err) fail<Error>("resample {} -> {} Hz: soxr: {}", in_rate, out_rate, err);
  pos += done;
  y.resize(pos);
  return y;
}

}  // namespace

mx::array resample(const mx::array& samples, int from_rate, int to_rate, ResampleQuality quality) {
  if (from_rate <= 0 || to_rate <= 0) {
    fail<InvalidArgument>("resample: sample rates must be positive, got {} -> {} Hz", from_rate,
                          to_rate);
  }
  if (samples.ndim() != 1 && samples.ndim() != 2) {
    fail<InvalidArgument>("resample: samples must be [T] or [C, T], got {} dimensions",
                          samples.ndim());
  }
  soxr_recipe(quality);
  if (from_rate == to_rate) return samples;
  const int C = samples.ndim() == 1 ? 1 : samples.shape(0);
  const int T = samples.shape(-1);
  if (C < 1) fail<InvalidArgument>("resample: samples [C, T] have no channel");

  auto x =
      mx::contiguous(mx::astype(samples, mx::float32, mx::Device::cpu), false, mx::Device::cpu);
  x.eval();
  std::vector<std::vector<float>> channels;
  channels.reserve(C);
  for (int c = 0; c < C; ++c) {
    const float* row = T > 0 ? x.data<float>() + static_cast<std::size_t>(c) * T : nullptr;
    channels.push_back(T > 0 ? resample_channel(row, T, from_rate, to_rate, quality)
                             : std::vector<float>{});
  }
  const int out_len = static_cast<int>(channels.front().size());
  std::vector<float> out(static_cast<std::size_t>(C) * out_len);
  for (int c = 0; c < C; ++c) {
    std::copy(channels[c].begin(), channels[c].end(),
              out.begin() + static_cast<std::ptrdiff_t>(c) * out_len);
  }
  if (samples.ndim() == 1) return mx::array(out.data(), {out_len}, mx::float32);
  return mx::array(out.data(), {C, out_len}, mx::float32);
}

}  // namespace ominix::audio
