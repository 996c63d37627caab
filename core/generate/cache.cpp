// ref: mlx-lm 0.32.2, mlx_lm/models/cache.py (KVCache, RotatingKVCache, QuantizedKVCache,
// create_attention_mask) and mlx_lm/models/base.py (quantized_scaled_dot_product_attention).
#include "ominix/generate/cache.h"

#include <algorithm>

#include <mlx/ops.h>
#include <mlx/utils.h>

#include "ominix/base/error.h"

namespace ominix::generate {

namespace {

constexpr int kSeq = 2;  // the sequence axis of [B, H, L, D]

/// v[..., a:b, :] along the sequence axis, with Python's clamping of a and b.
mx::array seq(const mx::array& v, int a, int b) {
  int n = v.shape(kSeq);
  a = std::clamp(a, 0, n);
  b = std::clamp(b, a, n);
  auto start = mx::Shape(v.ndim(), 0);
  auto stop = v.shape();
  start[kSeq] = a;
  stop[kSeq] = b;
  return mx::slice(v, start, stop);
}

/// v with v[..., at:at+L, :] = update (update [B, H, L, D]).
mx::array write_at(const mx::array& v, const mx::array& update, int at) {
  auto start = mx::Shape(v.ndim(), 0);
  auto stop = v.shape();
  start[kSeq] = at;
  stop[kSeq] = at + update.shape(kSeq);
  return mx::slice_update(v, update, start, stop);
}

/// Zeros like x [B, H, L, D] but with `len` positions.
mx::array zeros_seq(const mx::array& x, int len) {
  auto shape = x.shape();
  shape[kSeq] = len;
  return mx::zeros(shape, x.dtype());
}

void check_kv(const mx::array& keys, const mx::array& values, const char* who) {
  if (keys.ndim() != 4 || values.ndim() != 4)
    fail<InvalidArgument>("{}: keys and values must be [B, H, L, D], got {} and {} dims", who,
                          keys.ndim(), values.ndim());
  if (keys.shape(0) != values.shape(0) || keys.shape(1) != values.shape(1) ||
      keys.shape(kSeq) != values.shape(kSeq))
    fail<InvalidArgument>("{}: keys and values disagree on B, H or L", who);
}

std::size_t nbytes_of(const std::vector<mx::array>& arrays) {
  std::size_t n = 0;
  for (const auto& a : arrays) n += a.nbytes();
  return n;
}

QuantizedTensor map_quantized(const QuantizedTensor& t, auto&& f) {
  return {f(t.data), f(t.scales), f(t.biases), t.group_size, t.bits};
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Quantized tensors and attention over them.

QuantizedTensor QuantizedTensor::quantize(const mx::array& x, const KVQuantization& q) {
  if (x.ndim() == 0 || x.shape(-1) % q.group_size != 0)
    fail<InvalidArgument>("quantize: last dimension {} is not a multiple of group size {}",
                          x.ndim() ? x.shape(-1) : 0, q.group_size);
  auto parts = mx::quantize(x, q.group_size, q.bits);
  return {parts[0], parts[1], parts[2], q.group_size, q.bits};
}

mx::array QuantizedTensor::dequantize() const {
  return mx::dequantize(data, scales, biases, group_size, bits, "affine", std::nullopt,
                        scales.dtype());
}

mx::array quantized_sdpa(const mx::array& queries, const QuantizedTensor& keys,
                         const QuantizedTensor& values, float scale,
                         const nn::AttentionMask& mask) {
  if (queries.ndim() != 4 || keys.data.ndim() != 4 || values.data.ndim() != 4)
    fail<InvalidArgument>("quantized_sdpa: expected 4-D queries, keys and values");
  const int B = queries.shape(0), n_q_heads = queries.shape(1), L = queries.shape(2),
            D = queries.shape(3);
  const int n_kv_heads = keys.data.shape(-3);
  if (n_kv_heads == 0 || n_q_heads % n_kv_heads != 0)
    fail<InvalidArgument>("quantized_sdpa: {} key/value heads do not divide {} query heads",
                          n_kv_heads, n_q_heads);
  const int n_repeats = n_q_heads / n_kv_heads;

  auto q = mx::multiply(queries, mx::array(scale, queries.dtype()));
  auto k = keys;
  auto v = values;
  if (n_repeats > 1) {
    q = mx::reshape(q, {B, n_kv_heads, n_repeats, L, D});  // [B,Hq,L,D] -> [B,Hkv,R,L,D]
    auto add_repeat_axis = [](const mx::array& x) {
      return mx::expand_dims(x, -3);  // [B,Hkv,S,*] -> [B,Hkv,1,S,*]
    };
    k = map_quantized(k, add_repeat_axis);
    v = map_quantized(v, add_repeat_axis);
  }

  auto scores = mx::quantized_matmul(q, k.data, k.scales, k.biases, /*transpose=*/true,
                                     k.group_size, k.bits);  // [B,Hkv,(R,)L,S]
  std::optional<mx::array> m;
  if (std::holds_alternative<nn::CausalMask>(mask)) {
    const int qL = scores.shape(-2), kL = scores.shape(-1);
    auto q_idx = mx::expand_dims(mx::arange(kL - qL, kL, mx::int32), 1);  // [qL, 1]
    auto k_idx = mx::expand_dims(mx::arange(0, kL, mx::int32), 0);        // [1, kL]
    m = mx::greater_equal(q_idx, k_idx);
  } else if (const auto* a = std::get_if<mx::array>(&mask)) {
    m = *a;
    if (n_repeats > 1 && m->ndim() > 3) {
      if (m->ndim() == 4 && m->shape(1) == n_q_heads)
        // [B,Hq,L,S] -> [B,Hkv,R,L,S]
        m = mx::reshape(*m, {m->shape(0), n_kv_heads, n_repeats, m->shape(2), m->shape(3)});
      else
        m = mx::expand_dims(*m, -3);  // [B,1,L,S] -> [B,1,1,L,S]
    }
  }
  if (m) {
    if (m->dtype() == mx::bool_)
      scores = mx::where(*m, scores, mx::array(mx::finfo(scores.dtype()).min, scores.dtype()));
    else
      scores = mx::add(scores, *m);
  }
  scores = mx::softmax(scores, -1, /*precise=*/true);
  auto out = mx::quantized_matmul(scores, v.data, v.scales, v.biases, /*transpose=*/false,
                                  v.group_size, v.bits);                        // [B,Hkv,(R,)L,Dv]
  if (n_repeats > 1) out = mx::reshape(out, {B, n_q_heads, L, out.shape(-1)});  // -> [B,Hq,L,Dv]
  return out;
}

// ----------------------------------------------------------------------------------------------
// Masks.

nn::AttentionMask make_attention_mask(int n, int offset, const MaskOptions& options) {
  if (options.window_size) return nn::causal_mask(n, offset, options.window_size);
  if (n == 1) return nn::NoMask{};
  if (options.return_array) return nn::causal_mask(n, offset);
  return nn::CausalMask{};
}

mx::array LayerCache::update_and_attend(const mx::array& queries, const mx::array& keys,
                                        const mx::array& values, float scale,
                                        const nn::AttentionMask& mask) {
  auto [k, v] = update_and_fetch(keys, values);
  return nn::sdpa(queries, k, v, scale, mask);
}

// ----------------------------------------------------------------------------------------------
// KVCache.

KVCache::KVCache(int step) : step_(step) {
  if (step <= 0) fail<InvalidArgument>("KVCache: step must be positive, got {}", step);
}

std::pair<mx::array, mx::array> KVCache::update_and_fetch(const mx::array& keys,
                                                          const mx::array& values) {
  check_kv(keys, values, "KVCache");
  const int prev = offset_;
  const int L = keys.shape(kSeq);
  if (!keys_ || prev + L > keys_->shape(kSeq)) {
    const int n_steps = (step_ + L - 1) / step_;
    auto new_k = zeros_seq(keys, n_steps * step_);
    auto new_v = zeros_seq(values, n_steps * step_);
    if (keys_) {
      if (prev % step_ != 0) {  // drop positions trimmed away past the last full step
        keys_ = seq(*keys_, 0, prev);
        values_ = seq(*values_, 0, prev);
      }
      keys_ = mx::concatenate({*keys_, new_k}, kSeq);
      values_ = mx::concatenate({*values_, new_v}, kSeq);
    } else {
      keys_ = new_k;
      values_ = new_v;
    }
  }
  offset_ += L;
  keys_ = write_at(*keys_, keys, prev);
  values_ = write_at(*values_, values, prev);
  return keys_and_values();
}

std::pair<mx::array, mx::array> KVCache::keys_and_values() const {
  if (offset_ < keys_->shape(kSeq)) return {seq(*keys_, 0, offset_), seq(*values_, 0, offset_)};
  return {*keys_, *values_};
}

int KVCache::trim(int n) {
  n = std::clamp(n, 0, offset_);
  offset_ -= n;
  return n;
}

nn::AttentionMask KVCache::make_mask(int n, const MaskOptions& options) const {
  return make_attention_mask(n, offset_, options);
}

std::vector<mx::array> KVCache::state() const {
  if (!keys_) return {};
  return {*keys_, *values_};
}

std::size_t KVCache::nbytes() const {
  return keys_ ? keys_->nbytes() + values_->nbytes() : 0;
}

std::unique_ptr<LayerCache> KVCache::clone() const {
  return std::make_unique<KVCache>(*this);
}

std::unique_ptr<QuantizedKVCache> KVCache::to_quantized(const KVQuantization& q) const {
  auto out = std::make_unique<QuantizedKVCache>(q, step_);
  out->offset_ = offset_;
  if (keys_) {
    out->keys_ = QuantizedTensor::quantize(*keys_, q);
    out->values_ = QuantizedTensor::quantize(*values_, q);
  }
  return out;
}

// ----------------------------------------------------------------------------------------------
// RotatingKVCache.

RotatingKVCache::RotatingKVCache(int max_size, int keep, int step)
    : max_size_(max_size), keep_(keep), step_(step) {
  if (max_size <= 0 || keep < 0 || keep >= max_size || step <= 0)
    fail<InvalidArgument>(
        "RotatingKVCache: need 0 <= keep < max_size and step > 0, got max_size {} keep {} step {}",
        max_size, keep, step);
}

mx::array RotatingKVCache::trim_buffer(int trim_size, const mx::array& v,
                                       const std::optional<mx::array>& append) const {
  std::vector<mx::array> parts;
  if (trim_size > 0) {
    parts = {seq(v, 0, keep_), seq(v, trim_size + keep_, v.shape(kSeq))};
  } else {
    parts = {v};
  }
  if (append) parts.push_back(*append);
  return mx::concatenate(parts, kSeq);
}

mx::array RotatingKVCache::temporal_order(const mx::array& v) const {
  const int n = v.shape(kSeq);
  if (idx_ == n) return v;
  if (idx_ < offset_)  // wrapped: kept prefix, then the oldest (from idx) and the newest
    return mx::concatenate({seq(v, 0, keep_), seq(v, idx_, n), seq(v, keep_, idx_)}, kSeq);
  return seq(v, 0, idx_);
}

std::pair<mx::array, mx::array> RotatingKVCache::update_concat(const mx::array& keys,
                                                               const mx::array& values) {
  if (!keys_) {
    keys_ = keys;
    values_ = values;
  } else {
    keys_ = temporal_order(*keys_);
    values_ = temporal_order(*values_);
    idx_ = keys_->shape(kSeq);
    // Keep max_size - 1 old positions so that every new token sees max_size of context.
    const int trim_size = idx_ - max_size_ + 1;
    keys_ = trim_buffer(trim_size, *keys_, keys);
    values_ = trim_buffer(trim_size, *values_, values);
  }
  offset_ += keys.shape(kSeq);
  idx_ = keys_->shape(kSeq);
  return {*keys_, *values_};
}

std::pair<mx::array, mx::array> RotatingKVCache::update_in_place(const mx::array& keys,
                                                                 const mx::array& values) {
  const int S = keys.shape(kSeq);
  const int prev = offset_;
  if (!keys_ || (prev >= keys_->shape(kSeq) && keys_->shape(kSeq) < max_size_)) {
    // Not at the window yet: grow by up to a step.
    const int new_size = std::min(step_, max_size_ - prev);
    auto new_k = zeros_seq(keys, new_size);
    auto new_v = zeros_seq(values, new_size);
    if (keys_) {
      keys_ = mx::concatenate({*keys_, new_k}, kSeq);
      values_ = mx::concatenate({*values_, new_v}, kSeq);
    } else {
      keys_ = new_k;
      values_ = new_v;
    }
    idx_ = prev;
  }
  // A prefill may have left more than max_size positions: drop the oldest after `keep`.
  const int trim_size = keys_->shape(kSeq) - max_size_;
  if (trim_size > 0) {
    keys_ = trim_buffer(trim_size, *keys_);
    values_ = trim_buffer(trim_size, *values_);
    idx_ = max_size_;
  }
  if (idx_ == max_size_) idx_ = keep_;  // rotate
  keys_ = write_at(*keys_, keys, idx_);
  values_ = write_at(*values_, values, idx_);
  offset_ += S;
  idx_ += S;
  return keys_and_values();
}

std::pair<mx::array, mx::array> RotatingKVCache::update_and_fetch(const mx::array& keys,
                                                                  const mx::array& values) {
  check_kv(keys, values, "RotatingKVCache");
  if (keys.shape(kSeq) == 1) return update_in_place(keys, values);
  return update_concat(keys, values);
}

std::pair<mx::array, mx::array> RotatingKVCache::keys_and_values() const {
  if (offset_ < keys_->shape(kSeq)) return {seq(*keys_, 0, offset_), seq(*values_, 0, offset_)};
  return {*keys_, *values_};
}

int RotatingKVCache::trim(int n) {
  n = std::clamp(n, 0, offset_);
  offset_ -= n;
  idx_ -= n;
  return n;
}

nn::AttentionMask RotatingKVCache::make_mask(int n, const MaskOptions& options) const {
  if (n > 1) {
    const int window = options.window_size.value_or(max_size_);
    const int offset = std::min(max_size_ - 1, offset_);
    if (offset + n > window || options.return_array) return nn::causal_mask(n, offset, window);
    return nn::CausalMask{};
  }
  if (!options.window_size) return nn::NoMask{};
  const int window = *options.window_size;
  // A window shorter than the buffer: mask the buffer slots older than the window.
  if (offset_ >= window && max_size_ > window) {
    const int idx = idx_ >= max_size_ ? 0 : idx_;
    const int mask_size = offset_ < max_size_ ? offset_ + 1 : max_size_;
    auto mask = mx::greater_equal(mx::arange(0, mask_size, mx::int32),
                                  mx::array(mask_size - window));  // [mask_size]
    return mx::roll(mask, idx + 1);
  }
  return nn::NoMask{};
}

std::vector<mx::array> RotatingKVCache::state() const {
  if (!keys_) return {};
  return {*keys_, *values_};
}

std::size_t RotatingKVCache::nbytes() const {
  return keys_ ? keys_->nbytes() + values_->nbytes() : 0;
}

std::unique_ptr<LayerCache> RotatingKVCache::clone() const {
  return std::make_unique<RotatingKVCache>(*this);
}

// ----------------------------------------------------------------------------------------------
// QuantizedKVCache.

QuantizedKVCache::QuantizedKVCache(const KVQuantization& q, int step) : q_(q), step_(step) {
  if (q.bits != 2 && q.bits != 4 && q.bits != 8)
    fail<UnsupportedError>("QuantizedKVCache: bits must be 2, 4 or 8, got {}", q.bits);
  if (q.group_size <= 0) fail<InvalidArgument>("QuantizedKVCache: bad group size {}", q.group_size);
  if (step <= 0) fail<InvalidArgument>("QuantizedKVCache: step must be positive, got {}", step);
}

std::pair<QuantizedTensor, QuantizedTensor> QuantizedKVCache::update_and_fetch_quantized(
    const mx::array& keys, const mx::array& values) {
  check_kv(keys, values, "QuantizedKVCache");
  const int B = keys.shape(0), n_kv_heads = keys.shape(1), num_steps = keys.shape(kSeq);
  const int k_head_dim = keys.shape(3), v_head_dim = values.shape(3);
  if (k_head_dim % q_.group_size != 0 || v_head_dim % q_.group_size != 0)
    fail<InvalidArgument>("QuantizedKVCache: head dims {} / {} are not multiples of group size {}",
                          k_head_dim, v_head_dim, q_.group_size);
  const int prev = offset_;
  if (!keys_ || prev + num_steps > keys_->data.shape(kSeq)) {
    const int el_per_int = 32 / q_.bits;
    const int new_steps = (step_ + num_steps - 1) / step_ * step_;
    auto init_quant = [&](int dim) {
      return QuantizedTensor{
          mx::zeros({B, n_kv_heads, new_steps, dim / el_per_int}, mx::uint32),
          mx::zeros({B, n_kv_heads, new_steps, dim / q_.group_size}, keys.dtype()),
          mx::zeros({B, n_kv_heads, new_steps, dim / q_.group_size}, keys.dtype()), q_.group_size,
          q_.bits};
    };
    auto expand = [&](const mx::array& x) {
      return mx::concatenate({x, zeros_seq(x, new_steps)}, kSeq);
    };
    if (keys_) {
      if (prev % step_ != 0) {
        auto head = [&](const mx::array& x) { return seq(x, 0, prev); };
        keys_ = map_quantized(*keys_, head);
        values_ = map_quantized(*values_, head);
      }
      keys_ = map_quantized(*keys_, expand);
      values_ = map_quantized(*values_, expand);
    } else {
      keys_ = init_quant(k_head_dim);
      values_ = init_quant(v_head_dim);
    }
  }
  offset_ += num_steps;
  auto qk = QuantizedTensor::quantize(keys, q_);
  auto qv = QuantizedTensor::quantize(values, q_);
  auto write = [&](QuantizedTensor& dst, const QuantizedTensor& src) {
    dst.data = write_at(dst.data, src.data, prev);
    dst.scales = write_at(dst.scales, src.scales, prev);
    dst.biases = write_at(dst.biases, src.biases, prev);
  };
  write(*keys_, qk);
  write(*values_, qv);
  return keys_and_values();
}

std::pair<QuantizedTensor, QuantizedTensor> QuantizedKVCache::keys_and_values() const {
  if (offset_ == keys_->data.shape(kSeq)) return {*keys_, *values_};
  auto head = [&](const mx::array& x) { return seq(x, 0, offset_); };
  return {map_quantized(*keys_, head), map_quantized(*values_, head)};
}

std::pair<mx::array, mx::array> QuantizedKVCache::update_and_fetch(const mx::array& keys,
                                                                   const mx::array& values) {
  auto [k, v] = update_and_fetch_quantized(keys, values);
  return {k.dequantize(), v.dequantize()};
}

mx::array QuantizedKVCache::update_and_attend(const mx::array& queries, const mx::array& keys,
                                              const mx::array& values, float scale,
                                              const nn::AttentionMask& mask) {
  auto [k, v] = update_and_fetch_quantized(keys, values);
  return quantized_sdpa(queries, k, v, scale, mask);
}

int QuantizedKVCache::trim(int n) {
  n = std::clamp(n, 0, offset_);
  offset_ -= n;
  return n;
}

nn::AttentionMask QuantizedKVCache::make_mask(int n, const MaskOptions& options) const {
  return make_attention_mask(n, offset_, options);
}

std::vector<mx::array> QuantizedKVCache::state() const {
  if (!keys_) return {};
  return {keys_->data,   keys_->scales,   keys_->biases,
          values_->data, values_->scales, values_->biases};
}

std::size_t QuantizedKVCache::nbytes() const {
  return nbytes_of(state());
}

std::unique_ptr<LayerCache> QuantizedKVCache::clone() const {
  return std::make_unique<QuantizedKVCache>(*this);
}

// ----------------------------------------------------------------------------------------------
// Cache.

Cache::Cache(std::vector<std::unique_ptr<LayerCache>> layers) : layers_(std::move(layers)) {
  for (const auto& l : layers_)
    if (!l) fail<InvalidArgument>("Cache: null layer cache");
}

Cache Cache::make(int num_layers, const CacheOptions& options) {
  if (num_layers < 0) fail<InvalidArgument>("Cache::make: negative layer count {}", num_layers);
  if (options.max_kv_size && options.kv_bits)
    fail<UnsupportedError>("a quantized KV cache cannot also be rotating (max_kv_size)");
  if (options.kv_bits && *options.kv_bits != 4 && *options.kv_bits != 8)
    fail<InvalidArgument>("kv_bits must be 4 or 8, got {}", *options.kv_bits);
  std::vector<std::unique_ptr<LayerCache>> layers;
  layers.reserve(static_cast<std::size_t>(num_layers));
  for (int i = 0; i < num_layers; ++i) {
    if (options.max_kv_size) {
      layers.push_back(std::make_unique<RotatingKVCache>(
          *options.max_kv_size, std::min(options.keep, *options.max_kv_size - 1)));
    } else if (options.kv_bits) {
      layers.push_back(std::make_unique<QuantizedKVCache>(
          KVQuantization{.bits = *options.kv_bits, .group_size = options.kv_group_size}));
    } else {
      layers.push_back(std::make_unique<KVCache>());
    }
  }
  return Cache(std::move(layers));
}

int Cache::offset() const {
  return layers_.empty() ? 0 : layers_.front()->offset();
}

nn::AttentionMask Cache::make_mask(int n, const MaskOptions& options) const {
  if (layers_.empty()) return make_attention_mask(n, 0, options);
  return layers_.front()->make_mask(n, options);
}

bool Cache::is_trimmable() const {
  return std::all_of(layers_.begin(), layers_.end(),
                     [](const auto& l) { return l->is_trimmable(); });
}

int Cache::trim(int n) {
  if (layers_.empty() || !is_trimmable()) return 0;
  int trimmed = 0;
  for (auto& l : layers_) trimmed = l->trim(n);
  return trimmed;
}

void Cache::quantize(const KVQuantization& q, int start) {
  for (auto& l : layers_) {
    const auto* kv = dynamic_cast<const KVCache*>(l.get());
    if (kv && kv->offset() >= start) l = kv->to_quantized(q);
  }
}

std::vector<mx::array> Cache::state() const {
  std::vector<mx::array> out;
  for (const auto& l : layers_) {
    auto s = l->state();
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

std::size_t Cache::nbytes() const {
  std::size_t n = 0;
  for (const auto& l : layers_) n += l->nbytes();
  return n;
}

Cache Cache::clone() const {
  std::vector<std::unique_ptr<LayerCache>> layers;
  layers.reserve(layers_.size());
  for (const auto& l : layers_) layers.push_back(l->clone());
  return Cache(std::move(layers));
}

}  // namespace ominix::generate
