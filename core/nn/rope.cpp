#include "ominix/nn/rope.h"

#include <algorithm>
#include <cmath>

#include <mlx/fast.h>
#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::nn {

namespace {

// ref: transformers/modeling_rope_utils.py, _compute_default_rope_parameters
std::vector<float> default_inv_freq(double base, int dim) {
  std::vector<float> inv(dim / 2);
  for (int i = 0; i < dim / 2; ++i)
    inv[i] = 1.0f / std::pow(static_cast<float>(base),
                             static_cast<float>(2 * i) / static_cast<float>(dim));
  return inv;
}

float yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0f : static_cast<float>(0.1 * mscale * std::log(scale) + 1.0);
}

// The inverse frequencies of the config's scaling type.
std::vector<float> scaled_inv_freq(const io::RopeConfig& c, int dim, int seq_len) {
  switch (c.type) {
    case io::RopeType::standard:
      return default_inv_freq(c.theta, dim);
    case io::RopeType::linear: {
      auto inv = default_inv_freq(c.theta, dim);
      for (auto& f : inv) f /= static_cast<float>(c.factor);
      return inv;
    }
    case io::RopeType::dynamic: {
      // ref: _compute_dynamic_ntk_parameters; the base grows once the sequence outgrows the
      // trained length.
      double len = std::max<double>(seq_len, c.max_position_embeddings);
      double base = c.theta * std::pow(c.factor * len / c.max_position_embeddings - (c.factor - 1),
                                       double(dim) / (dim - 2));
      return default_inv_freq(base, dim);
    }
    case io::RopeType::llama3: {
      // ref: _compute_llama3_parameters
      auto inv = default_inv_freq(c.theta, dim);
      const double old_len = c.original_max_position_embeddings;
      const double low_wavelen = old_len / c.low_freq_factor,
                   high_wavelen = old_len / c.high_freq_factor;
      for (auto& f : inv) {
        float wavelen = 2.0f * float(M_PI) / f;
        float scaled = wavelen > low_wavelen ? f / float(c.factor) : f;
        if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
          float smooth = (float(old_len) / wavelen - float(c.low_freq_factor)) /
                         float(c.high_freq_factor - c.low_freq_factor);
          scaled = (1 - smooth) * scaled / float(c.factor) + smooth * scaled;
        }
        f = scaled;
      }
      return inv;
    }
    case io::RopeType::yarn: {
      // ref: _compute_yarn_parameters
      auto correction_dim = [&](double rotations) {
        return dim * std::log(c.original_max_position_embeddings / (rotations * 2 * M_PI)) /
               (2 * std::log(c.theta));
      };
      double low = correction_dim(c.beta_fast), high = correction_dim(c.beta_slow);
      if (c.truncate) low = std::floor(low), high = std::ceil(high);
      low = std::max(low, 0.0);
      high = std::min(high, double(dim - 1));
      if (low == high) high += 0.001;
      std::vector<float> inv(dim / 2);
      for (int i = 0; i < dim / 2; ++i) {
        float pos_freq =
            std::pow(static_cast<float>(c.theta), static_cast<float>(2 * i) / float(dim));
        float extrapolation = 1.0f / pos_freq;
        float interpolation = 1.0f / (float(c.factor) * pos_freq);
        float ramp = std::clamp(static_cast<float>((i - low) / (high - low)), 0.0f, 1.0f);
        float extrapolation_factor = 1.0f - ramp;
        inv[i] = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
      }
      return inv;
    }
  }
  return {};
}

}  // namespace

RoPE::RoPE(const io::RopeConfig& config, int head_dim)
    : config_(config), dims_(static_cast<int>(head_dim * config.partial_rotary_factor)) {
  if (dims_ <= 0 || dims_ % 2 != 0 || dims_ > head_dim)
    fail<ConfigError>(
        "rope: rotary dims {} (head_dim {} x partial_rotary_factor {}) must be even and positive",
        dims_, head_dim, config.partial_rotary_factor);
  if (!config_.freq_factors.empty() && config_.freq_factors.size() != std::size_t(dims_ / 2))
    fail<ConfigError>("rope: {} frequency factors for {} rotary dims (one per pair)",
                      config_.freq_factors.size(), dims_);
  if (config_.type == io::RopeType::yarn) {
    const auto& c = config_;
    if (c.attention_factor)
      attention_scaling_ = static_cast<float>(*c.attention_factor);
    else if (c.mscale && c.mscale_all_dim && *c.mscale && *c.mscale_all_dim)
      attention_scaling_ =
          yarn_mscale(c.factor, *c.mscale) / yarn_mscale(c.factor, *c.mscale_all_dim);
    else
      attention_scaling_ = yarn_mscale(c.factor, 1.0);
  }
  if (config_.type != io::RopeType::dynamic) freqs_ = freqs_for(0);
}

std::vector<float> RoPE::inv_freq(int seq_len) const {
  auto inv = scaled_inv_freq(config_, dims_, seq_len);
  // llama.cpp's rope_freqs (freq_factors of ggml_rope_ext): theta_i / factor_i.
  for (std::size_t i = 0; i < config_.freq_factors.size(); ++i) inv[i] /= config_.freq_factors[i];
  return inv;
}

mx::array RoPE::freqs_for(int seq_len) const {
  auto inv = inv_freq(seq_len);
  std::vector<float> periods(inv.size());
  std::transform(inv.begin(), inv.end(), periods.begin(), [](float f) { return 1.0f / f; });
  return mx::array(periods.data(), {static_cast<int>(periods.size())}, mx::float32);
}

mx::array RoPE::operator()(const mx::array& x, int offset) const {
  const int L = x.shape(-2);
  mx::array freqs = freqs_ ? *freqs_ : freqs_for(offset + L);
  mx::array in = x;
  if (attention_scaling_ != 1.0f) {
    // Scaling cos and sin by s scales the rotated part of x by s.
    auto s = mx::array(attention_scaling_, x.dtype());
    if (dims_ == x.shape(-1)) {
      in = mx::multiply(x, s);
    } else {
      auto rot = mx::slice(x, {0, 0, 0, 0}, {x.shape(0), x.shape(1), L, dims_});
      auto pass = mx::slice(x, {0, 0, 0, dims_}, x.shape());
      in = mx::concatenate({mx::multiply(rot, s), pass}, -1);
    }
  }
  return mx::fast::rope(in, dims_, config_.traditional, std::nullopt, 1.0f, offset, freqs);
}

RotaryTables mrope_tables(const mx::array& positions, const std::vector<float>& inv_freq,
                          const MRopeOptions& options) {
  if (positions.ndim() != 3)
    fail<InvalidArgument>("mrope: positions must be [axes, B, L], got {} dims", positions.ndim());
  const int A = positions.shape(0), half = static_cast<int>(inv_freq.size());
  int total = 0;
  for (int s : options.sections) total += s;
  if (total != half || int(options.sections.size()) > A)
    fail<InvalidArgument>("mrope: sections sum to {} over {} axes, need {} pairs over at most {}",
                          total, options.sections.size(), half, A);
  // The axis each rotary pair reads its position from.
  std::vector<int> axis(half, 0);
  if (options.interleaved) {
    std::vector<int> left = options.sections;
    for (int j = 0; j < half; ++j) {
      const int a = j % int(left.size());
      if (a > 0 && left[a] > 0) axis[j] = a, --left[a];
    }
  } else {
    for (int a = 0, j = 0; a < int(options.sections.size()); ++a)
      for (int k = 0; k < options.sections[a]; ++k) axis[j++] = a;
  }
  // [A,B,L] -> each pair's position [half,B,L] -> [B,L,half], times its inverse frequency.
  auto pos =
      mx::take(mx::astype(positions, mx::float32), mx::array(axis.data(), {half}, mx::int32), 0);
  auto freqs =
      mx::multiply(mx::transpose(pos, {1, 2, 0}), mx::array(inv_freq.data(), {half}, mx::float32));
  auto emb = mx::concatenate({freqs, freqs}, -1);  // -> [B,L,dims]
  return {mx::cos(emb), mx::sin(emb)};
}

mx::array apply_rotary(const mx::array& x, const RotaryTables& t) {
  const int D = x.shape(-1), dims = t.cos.shape(-1);
  if (dims > D || dims % 2 != 0)
    fail<InvalidArgument>("rotary: tables of {} dims for heads of {}", dims, D);
  const auto dt = x.dtype();
  auto xf = mx::astype(x, mx::float32);
  auto rot =
      dims == D ? xf : mx::slice(xf, {0, 0, 0, 0}, {x.shape(0), x.shape(1), x.shape(2), dims});
  auto cos = mx::expand_dims(t.cos, 1), sin = mx::expand_dims(t.sin, 1);  // [B,L,d] -> [B,1,L,d]
  auto parts = mx::split(rot, 2, -1);
  auto rotated = mx::concatenate({mx::negative(parts[1]), parts[0]}, -1);  // rotate_half
  auto out = mx::add(mx::multiply(rot, cos), mx::multiply(rotated, sin));
  if (dims != D) out = mx::concatenate({out, mx::slice(xf, {0, 0, 0, dims}, x.shape())}, -1);
  return mx::astype(out, dt);
}

}  // namespace ominix::nn
